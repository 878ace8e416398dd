#include "ctl/runs.h"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <thread>

#include "common/errors.h"
#include "common/pg.h"
#include "common/runs.h"
#include "common/runs_json.h"

namespace leadsync::ctl {
namespace {

using Clock = std::chrono::steady_clock;
using common::RunInfo;
using common::RunStatus;

constexpr int kOk = 0, kFailed = 1;

void require_source(const common::Config& config, const std::string& source) {
  if (!config.source(source)) throw common::ConfigError("no source named '" + source + "' in the configuration");
}

std::string percent_text(const RunInfo& r) {
  if (!r.progress.percent) return "-";
  char buf[16];
  std::snprintf(buf, sizeof buf, "%.1f%%", *r.progress.percent);
  return buf;
}

void print_table(const std::vector<RunInfo>& runs) {
  std::printf("%-44s %-10s %-9s %-20s %10s %7s  %s\n", "RUN", "STATUS", "TRIGGER", "STARTED (UTC)", "ROWS", "DONE",
              "MESSAGE");
  for (const auto& r : runs) {
    const auto note = !r.error.empty() ? r.error : r.message;
    std::printf("%-44s %-10s %-9s %-20s %10lld %7s  %s\n", r.run_id.c_str(),
                std::string(common::run_status_name(r.status)).c_str(),
                common::run_trigger_name(r.trigger), r.started_at.substr(0, 19).c_str(),
                static_cast<long long>(r.progress.rows_done), percent_text(r).c_str(), note.c_str());
  }
}

// Rows per second measured by this command, and the rest of the run at that rate when the total
// is known.
class ProgressView {
 public:
  explicit ProgressView(bool tty) : tty_(tty) {}

  void show(const RunInfo& r) {
    const auto now = Clock::now();
    if (r.status == RunStatus::kQueued) {
      if (!shown_queued_) std::cout << "queued: " << r.run_id << " (" << r.message << ")" << std::endl;
      shown_queued_ = true;
      return;
    }
    // Reading and publishing, then (published_at set) the workers applying the published events.
    const bool applying = !r.published_at.empty();
    const int64_t done = applying ? r.applied.total() : r.progress.rows_done;
    auto& first = applying ? first_applied_ : first_;
    if (!first) first = std::make_pair(now, done);
    const double secs = std::chrono::duration<double>(now - first->first).count();
    const double rate = secs > 0.5 ? (done - first->second) / secs : 0;
    const auto line = applying ? describe_applying(r, rate) : describe(r, rate);
    if (tty_) {
      std::cout << "\r" << line << "\x1b[K" << std::flush;
    } else if (line != last_line_ && now - last_print_ >= std::chrono::seconds(1)) {
      std::cout << line << std::endl;
      last_print_ = now;
    }
    last_line_ = line;
  }

  void end() {
    if (tty_ && !last_line_.empty()) std::cout << "\n";
  }

 private:
  static std::string describe(const RunInfo& r, double rate) {
    std::string bar;
    if (r.progress.percent) {
      const int filled = static_cast<int>(*r.progress.percent / 100.0 * 30);
      bar = "[" + std::string(std::clamp(filled, 0, 30), '#') + std::string(30 - std::clamp(filled, 0, 30), '.') + "] ";
    }
    char text[200];
    std::snprintf(text, sizeof text, "%s%s %lld%s rows, %.0f rows/s", bar.c_str(), percent_text(r).c_str(),
                  static_cast<long long>(r.progress.rows_done),
                  r.progress.rows_total ? ("/" + std::to_string(*r.progress.rows_total)).c_str() : "", rate);
    std::string out = text;
    if (r.progress.rows_total && rate > 0) {
      out += ", ETA " + std::to_string(static_cast<long long>((*r.progress.rows_total - r.progress.rows_done) / rate)) +
             " s";
    }
    return out;
  }

  // "applying: 1200/2200 events done (3 dead-lettered), 850 events/s, ETA 1 s"
  static std::string describe_applying(const RunInfo& r, double rate) {
    const int64_t published = r.counters.events_published, done = r.applied.total();
    std::string out = "applying: " + std::to_string(done) + "/" + std::to_string(published) + " events done";
    if (r.applied.dead_lettered > 0) out += " (" + std::to_string(r.applied.dead_lettered) + " dead-lettered)";
    char text[64];
    std::snprintf(text, sizeof text, ", %.0f events/s", rate);
    out += text;
    if (rate > 0 && published > done) out += ", ETA " + std::to_string(static_cast<long long>((published - done) / rate)) + " s";
    return out;
  }

  bool tty_;
  bool shown_queued_ = false;
  std::optional<std::pair<Clock::time_point, int64_t>> first_, first_applied_;
  Clock::time_point last_print_{};
  std::string last_line_;
};

int wait_for(common::RunStore& store, const std::string& run_id, int timeout_s) {
  ProgressView view(isatty(STDOUT_FILENO) == 1);
  const auto deadline = Clock::now() + std::chrono::seconds(timeout_s);
  for (;;) {
    const auto run = store.get(run_id);
    if (!run) throw std::runtime_error("run " + run_id + " disappeared");
    if (run->status != RunStatus::kQueued && run->status != RunStatus::kRunning) {
      view.end();
      const auto note = !run->error.empty() ? run->error : run->message;
      std::cout << "run " << run_id << ": " << common::run_status_name(run->status) << ", "
                << run->progress.rows_done << " rows read, " << run->counters.events_published << " events published"
                << (note.empty() ? "" : " (" + note + ")") << std::endl;
      return run->status == RunStatus::kCompleted ? kOk : kFailed;
    }
    view.show(*run);
    if (Clock::now() > deadline) {
      view.end();
      std::cerr << "leadsyncctl trigger: run " << run_id << " is still " << common::run_status_name(run->status)
                << " after " << timeout_s << " s\n";
      return kFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
}

int cmd_runs(common::RunStore& store, const common::Config& config, const std::string& source, int limit, bool json) {
  if (!source.empty()) require_source(config, source);
  const auto runs = store.list(source, limit);
  if (json) {
    for (const auto& r : runs) std::cout << common::run_to_json(r).dump() << "\n";
  } else {
    print_table(runs);
  }
  return kOk;
}

void print_stopped(const std::string& verb, const std::string& source, const common::CancelResult& r) {
  for (const auto& id : r.cancelled_queued) std::cout << "cancelled queued run " << id << "\n";
  if (!r.running.empty()) {
    std::cout << "asked running run " << r.running << " to " << verb << " at its next batch\n";
  } else if (r.cancelled_queued.empty()) {
    std::cout << "source " << source << " has no run in progress\n";
  }
}

}  // namespace

RunCommands::RunCommands(CLI::App& app) {
  runs_ = app.add_subcommand("runs", "the latest runs, newest first (of every source, or of SOURCE)");
  runs_->add_option("source", source_, "source name");
  runs_->add_option("--limit", limit_, "show at most this many (default 20)")->check(CLI::Range(1, 100000));
  runs_->add_flag("--json", json_, "one JSON object per run");
  trigger_ = app.add_subcommand("trigger", "queue a run of SOURCE for the producer service to start");
  trigger_->add_option("source", source_, "source name")->required();
  trigger_->add_flag("--wait", wait_, "wait for the run to end, showing its progress; exit 1 unless completed");
  trigger_->add_flag("--full", full_, "read the whole source, ignoring any checkpoint");
  trigger_->add_flag("--queue", queue_, "if the source is running, queue the run behind it instead of refusing");
  trigger_->add_option("--timeout", timeout_s_, "seconds --wait waits (default 3600)");
  pause_ = app.add_subcommand("pause", "stop SOURCE's schedule; a running run stops at its next batch");
  resume_ = app.add_subcommand("resume", "let SOURCE's schedule run again (the next run continues from its checkpoint)");
  cancel_ = app.add_subcommand("cancel", "cancel SOURCE's queued run and stop its running run at the next batch");
  for (auto* sub : {pause_, resume_, cancel_}) sub->add_option("source", source_, "source name")->required();
}

std::optional<int> RunCommands::dispatch(const common::Config& config) {
  if (!*runs_ && !*trigger_ && !*pause_ && !*resume_ && !*cancel_) return std::nullopt;
  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  common::RunStore store(*conn, common::kDefaultHeartbeatInterval);
  if (*runs_) return cmd_runs(store, config, source_, limit_, json_);
  require_source(config, source_);
  if (*trigger_) {
    const auto r = store.trigger(source_, full_ ? common::RunTrigger::kFull : common::RunTrigger::kManual,
                                 queue_ ? common::WhenRunning::kQueue : common::WhenRunning::kRefuse);
    std::cout << "queued run " << r.run_id << (r.behind_running ? " behind the running run" : "") << "\n";
    if (!r.producer_alive) {
      std::cerr << "leadsyncctl trigger: no producer service is running source " << source_
                << "; the run stays queued until one starts\n";
      if (wait_) return kFailed;
    }
    return wait_ ? wait_for(store, r.run_id, timeout_s_) : kOk;
  }
  if (*pause_) {
    std::cout << "paused source " << source_ << "\n";
    print_stopped("pause", source_, store.pause(source_));
    return kOk;
  }
  if (*resume_) {
    std::cout << (store.resume(source_) ? "resumed source " : "source was not paused: ") << source_ << "\n";
    return kOk;
  }
  print_stopped("cancel", source_, store.cancel(source_));
  return kOk;
}

}  // namespace leadsync::ctl
