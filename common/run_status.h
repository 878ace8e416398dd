// The one status vocabulary of a sync run (design.md §6, R3): the database's CHECK constraint, the
// API, the CLI, metrics and logs all use these five words and no others.
#pragma once

#include <optional>
#include <ostream>
#include <string_view>

namespace leadsync::common {

enum class RunStatus { kQueued, kRunning, kCompleted, kFailed, kCancelled };

constexpr const char* run_status_name(RunStatus s) noexcept {
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
  for (auto s : {RunStatus::kQueued, RunStatus::kRunning, RunStatus::kCompleted, RunStatus::kFailed,
                 RunStatus::kCancelled}) {
    if (text == run_status_name(s)) return s;
  }
  return std::nullopt;
}

// A run that can no longer change: completed, failed or cancelled.
constexpr bool is_final(RunStatus s) noexcept {
  return s == RunStatus::kCompleted || s == RunStatus::kFailed || s == RunStatus::kCancelled;
}

// A status equals its one string form (so `report.status == "completed"` reads as it did when the
// status was a string; an unknown or misspelt word never matches).
constexpr bool operator==(RunStatus s, std::string_view name) noexcept {
  return std::string_view(run_status_name(s)) == name;
}

inline std::ostream& operator<<(std::ostream& out, RunStatus s) { return out << run_status_name(s); }

}  // namespace leadsync::common
