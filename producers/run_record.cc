#include "producers/run_record.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/redact.h"
#include "common/text_encoding.h"

namespace leadsync::producers {
namespace {

constexpr int kStaleHeartbeatSeconds = 60;
// Bounds of what one row error stores: enough to see the problem, never a whole swallowed file.
constexpr std::size_t kMaxStoredValue = 1000;
constexpr std::size_t kMaxStoredMessage = 2000;

std::string status_text(common::RunStatus s) { return std::string(common::run_status_name(s)); }

}  // namespace

RunRecord::RunRecord(pqxx::connection& conn, std::string source, std::string run_id)
    : conn_(conn), source_(std::move(source)), run_id_(std::move(run_id)) {}

void RunRecord::begin() {
  for (int attempt = 0; attempt < 2; ++attempt) {
    try {
      pqxx::work tx(conn_);
      tx.exec_params(
          "INSERT INTO leadsync.sync_runs (run_id, source, status, started_at, heartbeat_at) "
          "VALUES ($1, $2, $3, now(), now())",
          run_id_, source_, status_text(common::RunStatus::kRunning));
      tx.commit();
      return;
    } catch (const pqxx::unique_violation& e) {
      // Only the one-running-run index means "already running"; anything else is a real error.
      if (std::string(e.what()).find("sync_runs_one_running") == std::string::npos) throw;
    }
    pqxx::work fix(conn_);
    // A run whose process died keeps its row 'running'; once its heartbeat is stale it is
    // failed here, which frees the source (R3).
    const auto stale = fix.exec_params(
        "UPDATE leadsync.sync_runs SET status = 'failed', finished_at = now(), "
        "message = 'heartbeat stale for more than " + std::to_string(kStaleHeartbeatSeconds) +
            " s; marked failed by run ' || $2 "
            "WHERE source = $1 AND status = 'running' AND heartbeat_at < now() - make_interval(secs => $3) "
            "RETURNING run_id",
        source_, run_id_, kStaleHeartbeatSeconds);
    fix.commit();
    if (stale.empty()) break;
    spdlog::warn("source {}: run {} had a stale heartbeat and was marked failed", source_,
                 stale[0][0].as<std::string>());
  }
  pqxx::work tx(conn_);
  const auto active = tx.exec_params(
      "SELECT run_id, started_at::text FROM leadsync.sync_runs WHERE source = $1 AND status = 'running'",
      source_);
  const auto who = active.empty() ? std::string("another run")
                                  : "run " + active[0][0].as<std::string>() + " (started " +
                                        active[0][1].as<std::string>() + ")";
  run_id_.clear();  // nothing recorded under this id
  throw std::runtime_error("source " + source_ + " is already running: " + who);
}

int64_t RunRecord::next_version(int64_t now_micros) {
  pqxx::work tx(conn_);
  const auto last = tx.exec_params1(
      "SELECT coalesce(max(source_version), 0) FROM leadsync.sync_runs WHERE source = $1", source_)[0];
  const auto v = std::max(now_micros, last.as<int64_t>() + 1);
  tx.exec_params("UPDATE leadsync.sync_runs SET source_version = $2 WHERE run_id = $1", run_id_, v);
  tx.commit();
  return v;
}

LastCompleted RunRecord::last_completed() {
  pqxx::work tx(conn_);
  const auto r = tx.exec_params(
      "SELECT coalesce(snapshot_hash, ''), coalesce(target_stamp, '') FROM leadsync.sync_runs "
      "WHERE source = $1 AND status = 'completed' ORDER BY finished_at DESC LIMIT 1",
      source_);
  if (r.empty()) return {};
  return {r[0][0].as<std::string>(), r[0][1].as<std::string>()};
}

common::RunStatus RunRecord::heartbeat(uint64_t rows_read, double percent, uint64_t events_published) {
  pqxx::work tx(conn_);
  const auto status = tx.exec_params1(
      "UPDATE leadsync.sync_runs SET heartbeat_at = now(), rows_read = $2, progress_percent = $3, "
      "events_published = $4 WHERE run_id = $1 RETURNING status",
      run_id_, static_cast<int64_t>(rows_read), percent, static_cast<int64_t>(events_published));
  tx.commit();
  return common::parse_run_status(status[0].as<std::string>()).value_or(common::RunStatus::kRunning);
}

bool RunRecord::write_errors(pqxx::work& tx, const std::vector<RowError>& errors, std::string& problem) {
  if (errors.empty()) return true;
  // A savepoint: when the details cannot be stored, the run's status still is.
  tx.exec("SAVEPOINT leadsync_run_errors");
  try {
    for (const auto& e : errors) {
      tx.exec_params(
          "INSERT INTO leadsync.run_errors (run_id, source, line, key, column_name, value, message) "
          "VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), $7)",
          run_id_, source_, static_cast<int64_t>(e.position), common::storable_text(e.key, kMaxStoredValue),
          common::storable_text(e.column, kMaxStoredValue), common::storable_text(e.value, kMaxStoredValue),
          common::storable_text(e.message, kMaxStoredMessage));
    }
    tx.exec("RELEASE SAVEPOINT leadsync_run_errors");
    return true;
  } catch (const std::exception& e) {
    problem = common::storable_text(e.what(), 300);
    tx.exec("ROLLBACK TO SAVEPOINT leadsync_run_errors");
    spdlog::error("source {}: run {}: storing {} row error(s) failed: {}", source_, run_id_, errors.size(), problem);
    return false;
  }
}

void RunRecord::update_final(pqxx::work& tx, const RunTotals& t) {
  const bool completed = t.status == common::RunStatus::kCompleted;
  tx.exec_params(
      "UPDATE leadsync.sync_runs SET status = $2, finished_at = now(), heartbeat_at = now(), rows_read = $3, "
      "rows_total = $3, events_published = $4, new_records = $5, changed_records = $6, deleted_records = $7, "
      "unchanged_records = $8, failed_records = $9, progress_percent = CASE WHEN $12 THEN 100 "
      "ELSE progress_percent END, message = NULLIF($10, ''), snapshot_hash = CASE WHEN $12 THEN $11 END, "
      "target_stamp = CASE WHEN $12 THEN $13 END "
      "WHERE run_id = $1",
      run_id_, status_text(t.status), t.counters.rows_read, t.counters.events_published, t.counters.new_records,
      t.counters.changed_records, t.counters.deleted_records, t.counters.unchanged_records,
      t.counters.rejected_records, common::storable_text(common::redact(t.message), 8000), t.snapshot_hash,
      completed, t.target_stamp);
}

void RunRecord::mark_failed(const std::string& message) noexcept {
  try {
    pqxx::work tx(conn_);
    tx.exec_params(
        "UPDATE leadsync.sync_runs SET status = 'failed', finished_at = now(), heartbeat_at = now(), "
        "message = $2 WHERE run_id = $1 AND status IN ('queued','running')",
        run_id_, common::storable_text(common::redact(message), 8000));
    tx.commit();
  } catch (const std::exception& e) {
    // The connection itself is gone: the heartbeat's staleness frees the source later (R3).
    spdlog::error("source {}: run {} could not be marked failed: {}", source_, run_id_, e.what());
  }
}

}  // namespace leadsync::producers
