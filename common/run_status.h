// The status of a sync run (design.md §6): the only five words, in this one spelling, that the
// database's CHECK constraint on leadsync.sync_runs.status, the producer, leadsyncctl, metrics and
// logs use. Code holds the enum; the string form exists for SQL, JSON and labels only.
#pragma once

#include <optional>
#include <ostream>
#include <string_view>

namespace leadsync::common {

enum class RunStatus { kQueued, kRunning, kCompleted, kFailed, kCancelled };

constexpr std::string_view run_status_name(RunStatus s) noexcept {
  switch (s) {
    case RunStatus::kQueued: return "queued";
    case RunStatus::kRunning: return "running";
    case RunStatus::kCompleted: return "completed";
    case RunStatus::kFailed: return "failed";
    case RunStatus::kCancelled: return "cancelled";
  }
  return "failed";
}

constexpr std::optional<RunStatus> parse_run_status(std::string_view text) noexcept {
  for (const auto s : {RunStatus::kQueued, RunStatus::kRunning, RunStatus::kCompleted, RunStatus::kFailed,
                       RunStatus::kCancelled}) {
    if (run_status_name(s) == text) return s;
  }
  return std::nullopt;
}

// A run that can no longer change: completed, failed or cancelled.
constexpr bool is_final(RunStatus s) noexcept {
  return s == RunStatus::kCompleted || s == RunStatus::kFailed || s == RunStatus::kCancelled;
}

// A status equals its one string form (so `report.status == "completed"` reads as it did when the
// status was a string, and cannot be misspelt into a silent false: an unknown word never matches).
constexpr bool operator==(RunStatus s, std::string_view name) noexcept { return run_status_name(s) == name; }

inline std::ostream& operator<<(std::ostream& out, RunStatus s) { return out << run_status_name(s); }

}  // namespace leadsync::common
