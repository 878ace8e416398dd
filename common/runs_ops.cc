// The run store's operator requests (cancel, pause, resume) and its read side (runs.h).
#include <spdlog/spdlog.h>

#include "common/runs.h"

namespace leadsync::common {
namespace {

#define LEADSYNC_ISO(col) "coalesce(to_char(r." col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '')"

// One RunInfo per row; the applied counts come from the workers' results joined by run id.
constexpr const char* kRunSelect =
    "SELECT r.run_id, r.source, r.status, r.trigger, " LEADSYNC_ISO("created_at") ", " LEADSYNC_ISO(
        "started_at") ", " LEADSYNC_ISO("heartbeat_at") ", " LEADSYNC_ISO("finished_at") ", "
    "r.rows_read, r.rows_total, r.progress_percent, coalesce(r.message, ''), r.events_published, r.new_records, "
    "r.changed_records, r.unchanged_records, r.deleted_records, r.failed_records, coalesce(r.error, ''), "
    "coalesce(r.checkpoint, ''), coalesce(r.resumed_from, ''), a.inserted, a.updated, a.deleted, a.unchanged, "
    "a.stale, a.failed, " LEADSYNC_ISO("published_at") " "
    "FROM leadsync.sync_runs r LEFT JOIN LATERAL (SELECT coalesce(sum(s.inserted), 0) AS inserted, "
    "coalesce(sum(s.updated), 0) AS updated, coalesce(sum(s.deleted), 0) AS deleted, "
    "coalesce(sum(s.unchanged), 0) AS unchanged, coalesce(sum(s.stale), 0) AS stale, "
    "coalesce(sum(s.failed), 0) AS failed FROM leadsync.run_apply_stats s WHERE s.run_id = r.run_id) a ON true ";

#undef LEADSYNC_ISO

RunInfo run_from(const pqxx::row& r) {
  RunInfo i;
  i.run_id = r[0].as<std::string>();
  i.source = r[1].as<std::string>();
  i.status = parse_run_status(r[2].as<std::string>()).value_or(RunStatus::kFailed);
  i.trigger = parse_run_trigger(r[3].as<std::string>()).value_or(RunTrigger::kSchedule);
  i.created_at = r[4].as<std::string>();
  i.started_at = r[5].as<std::string>();
  i.heartbeat_at = r[6].as<std::string>();
  i.finished_at = r[7].as<std::string>();
  i.progress.rows_done = r[8].as<int64_t>();
  if (!r[9].is_null()) i.progress.rows_total = r[9].as<int64_t>();
  if (!r[10].is_null()) i.progress.percent = r[10].as<double>();
  i.progress.message = r[11].as<std::string>();
  i.message = i.progress.message;
  i.counters = {r[8].as<int64_t>(),  r[13].as<int64_t>(), r[14].as<int64_t>(), r[15].as<int64_t>(),
                r[16].as<int64_t>(), r[17].as<int64_t>(), r[12].as<int64_t>()};
  i.error = r[18].as<std::string>();
  i.checkpoint = r[19].as<std::string>();
  i.resumed_from = r[20].as<std::string>();
  i.applied = {r[21].as<int64_t>(), r[22].as<int64_t>(), r[23].as<int64_t>(),
               r[24].as<int64_t>(), r[25].as<int64_t>(), r[26].as<int64_t>()};
  i.published_at = r[27].as<std::string>();
  return i;
}

// Queued runs of the source become cancelled; a running one gets a control row. One transaction.
CancelResult stop_runs(pqxx::work& tx, const std::string& source, const std::string& action,
                       const std::string& reason) {
  CancelResult out;
  const auto queued = tx.exec_params(
      "UPDATE leadsync.sync_runs SET status = 'cancelled', finished_at = now(), message = $2 "
      "WHERE source = $1 AND status = 'queued' RETURNING run_id",
      source, reason + " before it started");
  for (const auto& q : queued) out.cancelled_queued.push_back(q[0].as<std::string>());
  const auto running =
      tx.exec_params("SELECT run_id FROM leadsync.sync_runs WHERE source = $1 AND status = 'running' "
                     "AND published_at IS NULL", source);  // a published run only waits for the workers
  if (!running.empty()) {
    out.running = running[0][0].as<std::string>();
    tx.exec_params("INSERT INTO leadsync.run_controls (run_id, action) VALUES ($1, $2)", out.running, action);
  }
  return out;
}

}  // namespace

CancelResult RunStore::cancel(const std::string& source) {
  reap_stale(source);
  pqxx::work tx(conn_);
  auto out = stop_runs(tx, source, "cancel", "cancelled by an operator");
  if (out.cancelled_queued.empty() && out.running.empty()) {
    throw RunConflict("source " + source + " has no queued or running run to cancel");
  }
  tx.commit();
  return out;
}

CancelResult RunStore::pause(const std::string& source) {
  reap_stale(source);
  pqxx::work tx(conn_);
  tx.exec_params(
      "INSERT INTO leadsync.source_controls (source, paused, changed_at) VALUES ($1, true, now()) "
      "ON CONFLICT (source) DO UPDATE SET paused = true, changed_at = now()",
      source);
  auto out = stop_runs(tx, source, "pause", "paused");
  tx.commit();
  return out;
}

bool RunStore::resume(const std::string& source) {
  pqxx::work tx(conn_);
  const auto r = tx.exec_params(
      "UPDATE leadsync.source_controls SET paused = false, changed_at = now() WHERE source = $1 AND paused "
      "RETURNING source",
      source);
  tx.commit();
  return !r.empty();
}

std::vector<std::string> RunStore::reap_stale(const std::string& source) {
  std::vector<std::string> out;
  std::vector<int> runner_pids;
  {
    pqxx::work tx(conn_);
    // Rows written before heartbeat_ms existed promised a heartbeat every 2 s (20 s covers them).
    // A published run has no runner any more (it waits for the workers): not judged by heartbeat.
    const auto stale = tx.exec_params(
        "UPDATE leadsync.sync_runs SET status = 'failed', finished_at = now(), "
        "error = 'heartbeat stale: none since ' || to_char(heartbeat_at AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD HH24:MI:SS') || ' UTC, more than 3 intervals of ' || coalesce(heartbeat_ms, 20000) || "
        "' ms; marked failed and the source freed' "
        "WHERE status = 'running' AND published_at IS NULL AND ($1 = '' OR source = $1) AND "
        "heartbeat_at < now() - make_interval(secs => 3 * coalesce(heartbeat_ms, 20000) / 1000.0) "
        "RETURNING run_id, source, runner_pid",
        source);
    for (const auto& s : stale) {
      out.push_back(s[0].as<std::string>());
      if (!s[2].is_null()) runner_pids.push_back(s[2].as<int>());
      spdlog::warn("source {}: run {} had a stale heartbeat and was marked failed", s[1].as<std::string>(),
                   s[0].as<std::string>());
    }
    // A published run whose events stop arriving (lost from Kafka, skipped past, a topic deleted)
    // must not stay open for ever: after apply_wait_timeout without an applied event it fails,
    // naming how many are missing. Its publishing did finish, so the next run still compares
    // against it (last_completed).
    const auto unapplied = tx.exec_params(
        "WITH a AS (SELECT r.run_id, (SELECT coalesce(sum(s.inserted + s.updated + s.deleted + s.unchanged + "
        "s.stale + s.failed), 0) FROM leadsync.run_apply_stats s WHERE s.run_id = r.run_id) AS done, "
        "greatest(r.published_at, (SELECT max(s.at) FROM leadsync.run_apply_stats s WHERE s.run_id = r.run_id)) "
        "AS last_at FROM leadsync.sync_runs r WHERE r.status = 'running' AND r.published_at IS NOT NULL AND "
        "($1 = '' OR r.source = $1)) "
        "UPDATE leadsync.sync_runs r SET status = 'failed', finished_at = now(), "
        "message = NULLIF(regexp_replace(coalesce(r.message, ''), $3, ''), ''), "
        "error = (r.events_published - a.done) || ' of ' || r.events_published || "
        "' events were never applied or dead-lettered: none applied for ' || $2 || ' s since ' || "
        "to_char(a.last_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC (publishing ended ' || "
        "to_char(r.published_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') || ' UTC); are the workers running, "
        "were events lost from Kafka?' "
        "FROM a WHERE r.run_id = a.run_id AND r.status = 'running' AND a.last_at < now() - make_interval(secs => $2) "
        "RETURNING r.run_id, r.source, r.error",
        source, static_cast<int64_t>(apply_wait_timeout_.count()), "^" + std::string(kApplyingMessage) + "(; )?");
    for (const auto& u : unapplied) {
      out.push_back(u[0].as<std::string>());
      spdlog::warn("source {}: run {} marked failed: {}", u[1].as<std::string>(), u[0].as<std::string>(),
                   u[2].as<std::string>());
    }
    tx.commit();
  }
  // A runner that stopped heartbeating but still holds its session (hung, stopped) would keep the
  // source locked for ever: end that session. Only a session still holding a run lock is touched.
  for (const int pid : runner_pids) {
    try {
      pqxx::nontransaction n(conn_);
      n.exec_params(
          "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = $1 "
          "AND classid = $2::int::oid",
          pid, kRunLockSpace);
    } catch (const std::exception& e) {
      spdlog::warn("could not end the session of stale runner (backend pid {}): {}", pid, e.what());
    }
  }
  return out;
}

std::vector<RunInfo> RunStore::list(const std::string& source, int limit) {
  reap_stale(source);
  pqxx::work tx(conn_);
  const auto rows = tx.exec_params(std::string(kRunSelect) +
                                       "WHERE ($1 = '' OR r.source = $1) ORDER BY r.created_at DESC, r.run_id LIMIT $2",
                                   source, limit);
  std::vector<RunInfo> out;
  for (const auto& r : rows) out.push_back(run_from(r));
  return out;
}

std::optional<RunInfo> RunStore::get(const std::string& run_id) {
  reap_stale();
  pqxx::work tx(conn_);
  const auto rows = tx.exec_params(std::string(kRunSelect) + "WHERE r.run_id = $1", run_id);
  if (rows.empty()) return std::nullopt;
  return run_from(rows[0]);
}

std::vector<RunInfo> RunStore::unapplied(const std::string& source) {
  reap_stale(source);
  pqxx::work tx(conn_);
  const auto rows = tx.exec_params(
      std::string(kRunSelect) +
          "WHERE r.source = $1 AND (r.status IN ('queued','running') OR (r.status = 'cancelled' "
          "AND r.created_at > now() - interval '1 day' AND r.events_published > "
          "a.inserted + a.updated + a.deleted + a.unchanged + a.stale + a.failed)) ORDER BY r.created_at",
      source);
  std::vector<RunInfo> out;
  for (const auto& r : rows) out.push_back(run_from(r));
  return out;
}

SourceRunState RunStore::source_state(const std::string& source) {
  reap_stale(source);
  pqxx::work tx(conn_);
  SourceRunState s;
  s.source = source;
  const auto p = tx.exec_params("SELECT paused FROM leadsync.source_controls WHERE source = $1", source);
  s.paused = !p.empty() && p[0][0].as<bool>();
  const auto active = tx.exec_params(std::string(kRunSelect) +
                                         "WHERE r.source = $1 AND r.status IN ('running','queued') "
                                         "ORDER BY r.status = 'running' AND r.published_at IS NULL DESC, "
                                         "r.status = 'running' DESC, r.created_at DESC LIMIT 1",
                                     source);
  if (!active.empty()) s.active = run_from(active[0]);
  const auto last = tx.exec_params(std::string(kRunSelect) + "WHERE r.source = $1 ORDER BY r.created_at DESC LIMIT 1",
                                   source);
  if (!last.empty()) s.last = run_from(last[0]);
  s.last_completed_at = tx.exec_params1(
                            "SELECT coalesce(to_char(max(finished_at) AT TIME ZONE 'UTC', "
                            "'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), '') FROM leadsync.sync_runs "
                            "WHERE source = $1 AND status = 'completed'",
                            source)[0]
                            .as<std::string>();
  return s;
}

}  // namespace leadsync::common
