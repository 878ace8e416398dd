// A run's row in leadsync.sync_runs (design.md §6, R3): claimed at the start (one active run per
// source), kept alive by heartbeats that also carry progress and see a cancel, and closed with its
// final status, counters and row errors. Closing never leaves the row `running`: when the row
// errors cannot be stored the status is still written, and when even that fails the run is marked
// failed in a transaction of its own.
#pragma once

#include <pqxx/pqxx>

#include <cstdint>
#include <string>
#include <vector>

#include "common/run_status.h"
#include "common/runs.h"
#include "producers/source.h"

namespace leadsync::producers {

// What the last completed run of a source left: the snapshot it read and the target it wrote to.
struct LastCompleted {
  std::string snapshot_hash;  // empty when unknown
  std::string target_stamp;   // empty when unknown (runs before target stamps existed)
};

struct RunTotals {
  common::RunStatus status = common::RunStatus::kFailed;
  std::string message;
  common::RunCounters counters;  // the run store's counters (rejected = records that could not be mapped)
  std::string snapshot_hash;     // stored for a completed run only
  std::string target_stamp;      // stored for a completed run only
};

class RunRecord {
 public:
  RunRecord(pqxx::connection& conn, std::string source, std::string run_id);

  // Inserts the `running` row. A stale run of the source (heartbeat older than 60 s) is marked
  // failed first; a live one makes this throw, naming it.
  void begin();
  // Wall-clock microseconds, but above every version this source stamped before (a clock that
  // steps back must not make a newer run's changes look older), stored with the run.
  int64_t next_version(int64_t now_micros);
  LastCompleted last_completed();
  // Heartbeat with progress; returns the status in the row (an operator may have cancelled it).
  common::RunStatus heartbeat(uint64_t rows_read, double percent, uint64_t events_published);
  // Writes the final row, the row errors and, in the same transaction, `also` (the source state of
  // a completed run). Returns the message as stored (with a note when the row errors could not be).
  template <typename F>
  std::string finish(RunTotals totals, const std::vector<RowError>& errors, F&& also);

  const std::string& run_id() const { return run_id_; }

 private:
  void update_final(pqxx::work& tx, const RunTotals& totals);
  bool write_errors(pqxx::work& tx, const std::vector<RowError>& errors, std::string& problem);
  void mark_failed(const std::string& message) noexcept;

  pqxx::connection& conn_;
  std::string source_;
  std::string run_id_;
};

template <typename F>
std::string RunRecord::finish(RunTotals totals, const std::vector<RowError>& errors, F&& also) {
  try {
    pqxx::work tx(conn_);
    // The state moves with the run's completion in one transaction: both or neither.
    if (totals.status == common::RunStatus::kCompleted) also(tx);
    std::string problem;
    if (!write_errors(tx, errors, problem)) {
      totals.message += (totals.message.empty() ? "" : "; ") + std::string("the rejected records' details could not "
                                                                           "be stored: ") + problem;
    }
    update_final(tx, totals);
    tx.commit();
    return totals.message;
  } catch (const std::exception& e) {
    const auto message = "the run's outcome could not be recorded: " + std::string(e.what());
    mark_failed(message);
    throw std::runtime_error(message);
  }
}

}  // namespace leadsync::producers
