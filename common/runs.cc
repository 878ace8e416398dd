// The runner and operator sides of the run store (runs.h); the read side is in runs_query.cc.
#include "common/runs.h"

#include <spdlog/spdlog.h>

#include "common/pg.h"

#include <random>
#include <thread>

namespace leadsync::common {
namespace {

constexpr int kStaleIntervals = 3;

int64_t millis(std::chrono::milliseconds d) { return static_cast<int64_t>(d.count()); }

std::optional<double> percent_of(const RunProgress& p) {
  if (p.percent) return p.percent;
  if (p.rows_total && *p.rows_total > 0) return 100.0 * static_cast<double>(p.rows_done) / *p.rows_total;
  return std::nullopt;
}

RunControl control_from(const pqxx::field& status, const pqxx::field& action) {
  if (status.is_null() || status.as<std::string>() != "running") return RunControl::kLost;
  if (action.is_null()) return RunControl::kContinue;
  return action.as<std::string>() == "cancel" ? RunControl::kCancel : RunControl::kPause;
}

// The most urgent open request for a run: cancel before pause.
constexpr const char* kControlOf =
    "(SELECT c.action FROM leadsync.run_controls c WHERE c.run_id = $1 ORDER BY (c.action = 'cancel') DESC, c.id "
    "LIMIT 1)";

std::string describe_active(pqxx::work& tx, const std::string& source) {
  const auto r = tx.exec_params(
      "SELECT run_id, status, coalesce(to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), '') "
      "FROM leadsync.sync_runs WHERE source = $1 AND status = 'running' AND published_at IS NULL",
      source);
  if (r.empty()) return "another runner holds it";
  return "run " + r[0][0].as<std::string>() + " (started " + r[0][2].as<std::string>() + " UTC)";
}

}  // namespace

const char* run_trigger_name(RunTrigger t) noexcept {
  switch (t) {
    case RunTrigger::kSchedule: return "schedule";
    case RunTrigger::kManual: return "manual";
    case RunTrigger::kRepair: return "repair";
    case RunTrigger::kFull: return "full";
  }
  return "schedule";
}

std::optional<RunTrigger> parse_run_trigger(std::string_view text) noexcept {
  for (auto t : {RunTrigger::kSchedule, RunTrigger::kManual, RunTrigger::kRepair, RunTrigger::kFull}) {
    if (text == run_trigger_name(t)) return t;
  }
  return std::nullopt;
}

std::string new_run_id(const std::string& source) {
  std::random_device rd;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%lld-%08x", static_cast<long long>(ms), rd());
  return source + suffix;
}

RunStore::RunStore(pqxx::connection& conn, std::chrono::milliseconds heartbeat_interval)
    : conn_(conn), heartbeat_interval_(heartbeat_interval) {}

RunStore::~RunStore() {
  // A store destroyed mid-run (an exception unwinding) must not keep its sources locked while the
  // connection lives on.
  for (const auto& source : std::set<std::string>(claimed_)) {
    try {
      unlock(source);
    } catch (const std::exception&) {  // the session is gone, and its locks with it
    }
  }
}

bool RunStore::try_lock(const std::string& source) {
  pqxx::nontransaction n(conn_);
  return n.exec_params1("SELECT pg_try_advisory_lock($1, hashtext($2))", kRunLockSpace, source)[0].as<bool>();
}

void RunStore::unlock(const std::string& source) {
  claimed_.erase(source);
  pqxx::nontransaction n(conn_);
  n.exec_params("SELECT pg_advisory_unlock($1, hashtext($2))", kRunLockSpace, source);
}

ClaimedRun RunStore::claim(const std::string& source, RunTrigger trigger) {
  if (claimed_.count(source)) throw RunConflict("source " + source + " is already running in this process");
  bool locked = try_lock(source);
  if (!locked && !reap_stale(source).empty()) {
    // The stale runner's session is being terminated; its lock goes with it.
    for (int i = 0; i < 30 && !locked; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      locked = try_lock(source);
    }
  }
  if (!locked) {
    pqxx::work tx(conn_);
    throw RunConflict("source " + source + " is already running: " + describe_active(tx, source));
  }
  claimed_.insert(source);
  try {
    pqxx::work tx(conn_);
    // Holding the lock, any row still publishing belongs to a runner whose session ended. (A
    // published run waiting for the workers has no runner any more.)
    const auto orphans = tx.exec_params(
        "UPDATE leadsync.sync_runs SET status = 'failed', finished_at = now(), "
        "error = 'the runner''s session ended before the run finished (crash or lost connection); source freed' "
        "WHERE source = $1 AND status = 'running' AND published_at IS NULL RETURNING run_id",
        source);
    for (const auto& o : orphans) {
      spdlog::warn("source {}: run {} lost its runner and was marked failed", source, o[0].as<std::string>());
    }
    ClaimedRun run;
    run.source = source;
    run.trigger = trigger;
    const auto queued = tx.exec_params(
        "SELECT run_id, trigger FROM leadsync.sync_runs WHERE source = $1 AND status = 'queued' FOR UPDATE", source);
    if (!queued.empty()) {
      run.run_id = queued[0][0].as<std::string>();
      run.trigger = parse_run_trigger(queued[0][1].as<std::string>()).value_or(trigger);
      tx.exec_params(
          "UPDATE leadsync.sync_runs SET status = 'running', started_at = now(), heartbeat_at = now(), "
          "runner_pid = pg_backend_pid(), heartbeat_ms = $2 WHERE run_id = $1",
          run.run_id, millis(heartbeat_interval_));
    } else {
      run.run_id = new_run_id(source);
      tx.exec_params(
          "INSERT INTO leadsync.sync_runs (run_id, source, status, trigger, started_at, heartbeat_at, runner_pid, "
          "heartbeat_ms) VALUES ($1, $2, 'running', $3, now(), now(), pg_backend_pid(), $4)",
          run.run_id, source, std::string(run_trigger_name(run.trigger)), millis(heartbeat_interval_));
    }
    if (run.trigger != RunTrigger::kFull) {
      // The newest run that started before this one, if it was interrupted with a checkpoint (a
      // cancelled run clears its own, so nothing before it is resumed either; a run cancelled
      // while queued never started and does not count; a run whose publishing finished, completed
      // or not yet, keeps the cursor of the next incremental read there, not a resume point).
      const auto cp = tx.exec_params(
          "SELECT run_id, checkpoint FROM (SELECT run_id, checkpoint, status, published_at FROM leadsync.sync_runs "
          "WHERE source = $1 AND run_id <> $2 AND (status IN ('failed','cancelled','completed') OR "
          "published_at IS NOT NULL) AND started_at IS NOT NULL ORDER BY started_at DESC LIMIT 1) last "
          "WHERE status <> 'completed' AND published_at IS NULL AND checkpoint IS NOT NULL",
          source, run.run_id);
      if (!cp.empty()) {
        run.resumed_from = cp[0][0].as<std::string>();
        run.checkpoint = cp[0][1].as<std::string>();
        tx.exec_params("UPDATE leadsync.sync_runs SET resumed_from = $2, checkpoint = $3 WHERE run_id = $1",
                       run.run_id, run.resumed_from, run.checkpoint);
      }
    }
    tx.commit();
    return run;
  } catch (...) {
    unlock(source);
    throw;
  }
}

RunControl RunStore::heartbeat(const ClaimedRun& run, const RunProgress& p, const RunCounters& c) {
  pqxx::work tx(conn_);
  const auto pct = percent_of(p);
  const auto r = tx.exec_params(
      std::string("UPDATE leadsync.sync_runs SET heartbeat_at = now(), rows_read = $2, rows_total = $3, "
                  "progress_percent = $4, message = NULLIF($5, ''), events_published = $6, new_records = $7, "
                  "changed_records = $8, unchanged_records = $9, deleted_records = $10, failed_records = $11 "
                  "WHERE run_id = $1 AND status = 'running' RETURNING status, ") +
          kControlOf,
      run.run_id, p.rows_done, p.rows_total, pct, p.message, c.events_published, c.new_records, c.changed_records,
      c.unchanged_records, c.deleted_records, c.rejected_records);
  tx.commit();
  if (r.empty()) return RunControl::kLost;
  return control_from(r[0][0], r[0][1]);
}

RunControl RunStore::control(const ClaimedRun& run) {
  pqxx::work tx(conn_);
  const auto r = tx.exec_params(
      std::string("SELECT status, ") + kControlOf + " FROM leadsync.sync_runs WHERE run_id = $1", run.run_id);
  if (r.empty()) return RunControl::kLost;
  return control_from(r[0][0], r[0][1]);
}

void RunStore::save_checkpoint(const ClaimedRun& run, const std::string& checkpoint) {
  pqxx::work tx(conn_);
  tx.exec_params("UPDATE leadsync.sync_runs SET checkpoint = $2, checkpoint_at = now() WHERE run_id = $1", run.run_id,
                 checkpoint);
  tx.commit();
}

void RunStore::save_checkpoint(pqxx::work& tx, const ClaimedRun& run, const std::string& checkpoint) {
  tx.exec_params("UPDATE leadsync.sync_runs SET checkpoint = $2, checkpoint_at = now() WHERE run_id = $1", run.run_id,
                 checkpoint);
}

void RunStore::drop_resume(pqxx::work& tx, const ClaimedRun& run) {
  tx.exec_params("UPDATE leadsync.sync_runs SET checkpoint = NULL, checkpoint_at = NULL, resumed_from = NULL "
                 "WHERE run_id = $1",
                 run.run_id);
}

int64_t RunStore::next_version(const ClaimedRun& run, int64_t now_micros) {
  pqxx::work tx(conn_);
  const auto last = tx.exec_params1(
      "SELECT coalesce(max(source_version), 0) FROM leadsync.sync_runs WHERE source = $1", run.source)[0];
  const auto v = std::max(now_micros, last.as<int64_t>() + 1);
  tx.exec_params("UPDATE leadsync.sync_runs SET source_version = $2 WHERE run_id = $1", run.run_id, v);
  tx.commit();
  return v;
}

LastCompletedRun RunStore::last_completed(const std::string& source) {
  pqxx::work tx(conn_);
  const auto r = tx.exec_params(
      "SELECT coalesce(snapshot_hash, ''), coalesce(target_stamp, ''), coalesce(checkpoint, '') "
      "FROM leadsync.sync_runs WHERE source = $1 AND published_at IS NOT NULL ORDER BY published_at DESC LIMIT 1",
      source);
  if (r.empty()) return {};
  return {r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::string>()};
}

bool RunStore::finish(pqxx::work& tx, const ClaimedRun& run, const RunEnd& e) {
  const auto& c = e.counters;
  // Publishing completed: the run stays `running` with published_at set until the workers applied
  // it (close_applied below, or the worker that applies its last event).
  const bool published = e.status == RunStatus::kCompleted;
  if (published) tx.exec_params("SELECT pg_advisory_xact_lock($1, hashtext($2))", kRunCloseLockSpace, run.run_id);
  std::string message = e.message;
  if (published) message = std::string(kApplyingMessage) + (message.empty() ? "" : "; " + message);
  const auto r = tx.exec_params(
      "UPDATE leadsync.sync_runs SET status = CASE WHEN $12 THEN 'running' ELSE $2 END, "
      "finished_at = CASE WHEN $12 THEN NULL ELSE now() END, published_at = CASE WHEN $12 THEN now() END, "
      "heartbeat_at = now(), rows_read = $3, "
      "events_published = $4, new_records = $5, changed_records = $6, unchanged_records = $7, "
      "deleted_records = $8, failed_records = $9, message = NULLIF($10, ''), error = NULLIF($11, ''), "
      "progress_percent = CASE WHEN $12 THEN 100 ELSE progress_percent END, "
      "rows_total = CASE WHEN $12 THEN $3 ELSE rows_total END, "
      "snapshot_hash = CASE WHEN $12 THEN NULLIF($13, '') END, target_stamp = CASE WHEN $12 THEN NULLIF($14, '') END, "
      "checkpoint = CASE WHEN $15 THEN NULLIF($16, '') ELSE checkpoint END, "
      "checkpoint_at = CASE WHEN $15 THEN now() ELSE checkpoint_at END "
      "WHERE run_id = $1 AND status = 'running' AND published_at IS NULL",
      run.run_id, std::string(run_status_name(e.status)), c.rows_read, c.events_published, c.new_records,
      c.changed_records, c.unchanged_records, c.deleted_records, c.rejected_records, message, e.error, published,
      e.snapshot_hash, e.target_stamp, e.checkpoint.has_value(), e.checkpoint.value_or(""));
  if (r.affected_rows() != 1) return false;
  // The workers may have applied every event before publishing was marked done.
  if (published) close_applied(tx, {run.run_id});
  return true;
}

std::vector<std::string> close_applied(pqxx::transaction_base& tx, const std::vector<std::string>& run_ids) {
  std::vector<std::string> closed;
  for (const auto& id : run_ids) {
    if (id.empty()) continue;
    // Taken before the check, held to the commit: the check (a statement of its own, so with a
    // snapshot taken after the lock) sees every other transaction that wrote this run's statistics.
    tx.exec_params("SELECT pg_advisory_xact_lock($1, hashtext($2))", kRunCloseLockSpace, id);
    const auto r = tx.exec_params(
        "UPDATE leadsync.sync_runs r SET status = 'completed', finished_at = now(), "
        "message = NULLIF(regexp_replace(coalesce(r.message, ''), $2, ''), '') "
        "WHERE r.run_id = $1 AND r.status = 'running' AND r.published_at IS NOT NULL AND r.events_published <= "
        "(SELECT coalesce(sum(s.inserted + s.updated + s.deleted + s.unchanged + s.stale + s.failed), 0) "
        "FROM leadsync.run_apply_stats s WHERE s.run_id = r.run_id) RETURNING r.run_id",
        id, "^" + std::string(kApplyingMessage) + "(; )?");
    if (!r.empty()) closed.push_back(id);
  }
  return closed;
}

bool RunStore::finish(pqxx::work& tx, const ClaimedRun& run, RunStatus status, const RunCounters& counters,
                      const std::string& message, const std::string& error) {
  return finish(tx, run, RunEnd{status, counters, message, error, "", "", std::nullopt});
}

bool RunStore::finish(const ClaimedRun& run, RunStatus status, const RunCounters& counters,
                      const std::string& message, const std::string& error) {
  bool ok = false;
  {
    pqxx::work tx(conn_);
    ok = finish(tx, run, status, counters, message, error);
    tx.commit();
  }
  release(run);
  return ok;
}

void RunStore::release(const ClaimedRun& run) {
  if (claimed_.count(run.source)) unlock(run.source);
}

bool RunStore::paused(const std::string& source) {
  pqxx::work tx(conn_);
  const auto r = tx.exec_params("SELECT paused FROM leadsync.source_controls WHERE source = $1", source);
  return !r.empty() && r[0][0].as<bool>();
}

std::vector<std::string> RunStore::queued_sources(const std::vector<std::string>& among) {
  pqxx::work tx(conn_);
  std::vector<std::string> out;
  for (const auto& s : among) {
    const auto r = tx.exec_params(
        "SELECT 1 FROM leadsync.sync_runs WHERE source = $1 AND status = 'queued' AND NOT EXISTS "
        "(SELECT 1 FROM leadsync.source_controls WHERE source = $1 AND paused)",
        s);
    if (!r.empty()) out.push_back(s);
  }
  return out;
}

void RunStore::announce(const std::string& instance, const std::vector<std::string>& sources) {
  TextArrayLiteral list;
  for (const auto& s : sources) list.add(s);
  pqxx::work tx(conn_);
  tx.exec_params(
      "INSERT INTO leadsync.producer_instances (instance, sources, heartbeat_ms, heartbeat_at) "
      "VALUES ($1, $2::text[], $3, now()) ON CONFLICT (instance) DO UPDATE SET sources = excluded.sources, "
      "heartbeat_ms = excluded.heartbeat_ms, heartbeat_at = now()",
      instance, list.str(), millis(heartbeat_interval_));
  tx.commit();
}

void RunStore::withdraw(const std::string& instance) {
  pqxx::work tx(conn_);
  tx.exec_params("DELETE FROM leadsync.producer_instances WHERE instance = $1", instance);
  tx.commit();
}

TriggerResult RunStore::trigger(const std::string& source, RunTrigger trigger, WhenRunning when_running) {
  reap_stale(source);
  pqxx::work tx(conn_);
  // Serialise triggers of one source, so that the checks below and the insert are one step.
  tx.exec_params("SELECT pg_advisory_xact_lock($1 + 1, hashtext($2))", kRunLockSpace, source);
  if (const auto p = tx.exec_params("SELECT 1 FROM leadsync.source_controls WHERE source = $1 AND paused", source);
      !p.empty()) {
    throw RunConflict("source " + source + " is paused; resume it first");
  }
  TriggerResult result;
  const auto running = tx.exec_params(
      "SELECT run_id FROM leadsync.sync_runs WHERE source = $1 AND status = 'running' AND published_at IS NULL", source);
  result.behind_running = !running.empty();
  if (result.behind_running && when_running == WhenRunning::kRefuse) {
    throw RunConflict("source " + source + " is already running: " + describe_active(tx, source) +
                      "; trigger with --queue to run it again after that run");
  }
  const auto queued =
      tx.exec_params("SELECT run_id FROM leadsync.sync_runs WHERE source = $1 AND status = 'queued'", source);
  if (!queued.empty()) {
    throw RunConflict("source " + source + " already has a queued run: " + queued[0][0].as<std::string>());
  }
  result.run_id = new_run_id(source);
  tx.exec_params(
      "INSERT INTO leadsync.sync_runs (run_id, source, status, trigger, message) VALUES ($1, $2, 'queued', $3, $4)",
      result.run_id, source, std::string(run_trigger_name(trigger)),
      std::string(result.behind_running ? "queued behind the running run" : "waiting for a producer to start it"));
  result.producer_alive = !tx.exec_params(
                               "SELECT 1 FROM leadsync.producer_instances WHERE $1 = ANY(sources) AND heartbeat_at > "
                               "now() - make_interval(secs => $2 * heartbeat_ms / 1000.0)",
                               source, kStaleIntervals)
                               .empty();
  tx.commit();
  return result;
}

}  // namespace leadsync::common
