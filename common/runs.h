// The run store (design.md §6, R3, R4): sync runs as a database-backed state machine
// queued -> running -> completed | failed | cancelled.
//
// Single runner per source, enforced by PostgreSQL twice over: the runner holds a session-level
// advisory lock on the source for the whole run (a crashed runner's session ends and frees it), and
// a partial unique index allows one `running` row still publishing per source (plus one `queued`
// row beside it).
// A run whose heartbeat is older than 3 of its heartbeat intervals is marked failed and its source
// freed. Cancel and pause are rows (leadsync.run_controls) that the runner reads between batches.
//
// A run is `completed` only when every event it published is applied or dead-lettered (issue 10
// item 4). When publishing ends the runner stores its counters and state and sets published_at;
// the run stays `running` ("publishing done, applying") and the runner frees the source, so the
// next run may start. Whoever sees the last event applied closes it (close_applied): the worker in
// the transaction that counts it, or the runner right after publishing. A published run that gets
// no applied event for apply_wait_timeout is marked failed, naming how many events are missing.
#pragma once

#include <pqxx/pqxx>

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/run_status.h"

namespace leadsync::common {

// First half of every run lock key (pg_advisory_lock(int, int)), so that leadsync's advisory locks do
// not collide with an application's; the second half is hashtext(source).
inline constexpr int kRunLockSpace = 0x4c53;  // "LS"

// Second half-space of the lock that serialises the close of one run (close_applied).
inline constexpr int kRunCloseLockSpace = kRunLockSpace + 2;

// How long a published run may wait for its next applied event before it is marked failed.
inline constexpr std::chrono::seconds kDefaultApplyWaitTimeout{3600};

// The message a run carries from the end of its publishing until it is completed.
inline constexpr const char* kApplyingMessage = "publishing done, applying";

// How often a runner heartbeats unless configured otherwise; 3 missed intervals make a run stale.
inline constexpr std::chrono::milliseconds kDefaultHeartbeatInterval{2000};

enum class RunTrigger { kSchedule, kManual, kRepair, kFull };
const char* run_trigger_name(RunTrigger t) noexcept;
std::optional<RunTrigger> parse_run_trigger(std::string_view text) noexcept;

// What a runner does at its next batch boundary.
enum class RunControl {
  kContinue,
  kCancel,  // end `cancelled`, publish nothing more
  kPause,   // end `cancelled` (reason paused), keep the checkpoint
  kLost,    // the run is no longer ours (marked failed for a stale heartbeat): stop at once
};

// A second runner, or a trigger, that the current state refuses (HTTP 409). The message names the
// run that holds the source.
class RunConflict : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct RunCounters {
  int64_t rows_read = 0;
  int64_t new_records = 0;
  int64_t changed_records = 0;
  int64_t unchanged_records = 0;
  int64_t deleted_records = 0;
  int64_t rejected_records = 0;
  int64_t events_published = 0;
};

struct RunProgress {
  int64_t rows_done = 0;
  std::optional<int64_t> rows_total;  // when the source knows it
  std::optional<double> percent;      // else derived from rows_done / rows_total
  std::string message;
};

// What the workers applied for a run (leadsync.run_apply_stats, joined by run id).
struct AppliedCounts {
  int64_t inserted = 0, updated = 0, deleted = 0, unchanged = 0, stale = 0, dead_lettered = 0;
  int64_t total() const { return inserted + updated + deleted + unchanged + stale + dead_lettered; }
};

struct RunInfo {
  std::string run_id;
  std::string source;
  RunStatus status = RunStatus::kQueued;
  RunTrigger trigger = RunTrigger::kSchedule;
  // ISO 8601 UTC; empty when not reached yet.
  std::string created_at, started_at, heartbeat_at, finished_at;
  std::string published_at;  // publishing done (the run is `running` until its events are applied)
  RunProgress progress;
  RunCounters counters;
  AppliedCounts applied;
  std::string message, error, checkpoint, resumed_from;
};

// A run this store's session now owns.
struct ClaimedRun {
  std::string run_id;
  std::string source;
  RunTrigger trigger = RunTrigger::kSchedule;
  std::string checkpoint;    // where an interrupted earlier run stopped; empty: start from the beginning
  std::string resumed_from;  // that run
};

// How a run ends (RunStore::finish). A completed run also stores what the next run compares
// against: the snapshot it read, the target it wrote to and where an incremental read continues.
struct RunEnd {
  RunStatus status = RunStatus::kFailed;
  RunCounters counters;
  std::string message;
  std::string error;
  std::string snapshot_hash;  // completed runs only
  std::string target_stamp;   // completed runs only
  // nullopt: the checkpoint stays as the run left it (pause, crash); "" clears it (cancel); else
  // stored (a completed run: the cursor of the next incremental read).
  std::optional<std::string> checkpoint;
};

// What the latest completed run of a source left for the next one.
struct LastCompletedRun {
  std::string snapshot_hash;  // empty when unknown
  std::string target_stamp;   // empty when unknown (runs before target stamps existed)
  std::string checkpoint;     // the cursor an incremental read continues from; empty when none
};

enum class WhenRunning { kRefuse, kQueue };

struct TriggerResult {
  std::string run_id;
  bool behind_running = false;   // queued beside a running run
  bool producer_alive = false;   // a producer service that runs this source heartbeats
};

struct CancelResult {
  std::vector<std::string> cancelled_queued;  // never started, now cancelled
  std::string running;                        // asked to stop at its next batch; empty if none
};

struct SourceRunState {
  std::string source;
  bool paused = false;
  std::optional<RunInfo> active;  // running, else queued
  std::optional<RunInfo> last;    // latest run of any status
  std::string last_completed_at;  // freshness: when the latest completed run finished; empty if never
};

class RunStore {
 public:
  // `heartbeat_interval` is what this process's runs promise; staleness is judged by each run's own.
  RunStore(pqxx::connection& conn, std::chrono::milliseconds heartbeat_interval);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;

  // --- runner side (the connection is the runner's session; keep it for the whole run)
  // Starts a run of `source`: the queued one if there is one, else a new one with `trigger`.
  // Throws RunConflict when another runner holds the source (after freeing a stale one).
  ClaimedRun claim(const std::string& source, RunTrigger trigger);
  // Stores progress (rows_done is the run's rows read so far) and counters; returns what to do next.
  RunControl heartbeat(const ClaimedRun& run, const RunProgress& progress, const RunCounters& counters);
  RunControl control(const ClaimedRun& run);  // reads the control rows only
  void save_checkpoint(const ClaimedRun& run, const std::string& checkpoint);
  // The same inside the caller's transaction (with what the checkpoint stands for).
  void save_checkpoint(pqxx::work& tx, const ClaimedRun& run, const std::string& checkpoint);
  // The run does not continue the checkpoint its claim handed over (it reads from the start).
  void drop_resume(pqxx::work& tx, const ClaimedRun& run);
  // The version the run stamps on its events: wall-clock microseconds, but above every version the
  // source stamped before (a clock that steps back must not make newer changes look older).
  int64_t next_version(const ClaimedRun& run, int64_t now_micros);
  // What the latest run whose publishing finished (its state stored) left: completed, or still
  // being applied, or failed while waiting for the workers.
  LastCompletedRun last_completed(const std::string& source);
  // Records the end inside the caller's transaction (so the caller's own state commits with it);
  // call release() after the commit. Returns false when the run was no longer running. A
  // `completed` end is the end of publishing: the run stays `running` with published_at set
  // until its events are all applied (closed here at once when they already are).
  bool finish(pqxx::work& tx, const ClaimedRun& run, const RunEnd& end);
  bool finish(pqxx::work& tx, const ClaimedRun& run, RunStatus status, const RunCounters& counters,
              const std::string& message, const std::string& error);
  bool finish(const ClaimedRun& run, RunStatus status, const RunCounters& counters, const std::string& message,
              const std::string& error);
  void release(const ClaimedRun& run);
  bool paused(const std::string& source);
  std::vector<std::string> queued_sources(const std::vector<std::string>& among);
  void announce(const std::string& instance, const std::vector<std::string>& sources);
  void withdraw(const std::string& instance);
  std::chrono::milliseconds heartbeat_interval() const { return heartbeat_interval_; }

  // --- operator side
  TriggerResult trigger(const std::string& source, RunTrigger trigger, WhenRunning when_running);
  CancelResult cancel(const std::string& source);
  CancelResult pause(const std::string& source);
  bool resume(const std::string& source);  // false when it was not paused

  // --- queries (each first frees runs with a stale heartbeat)
  std::vector<RunInfo> list(const std::string& source, int limit);  // newest first; "" = every source
  std::optional<RunInfo> get(const std::string& run_id);
  SourceRunState source_state(const std::string& source);
  // Runs of `source` that are not done: queued and running runs (a running run may be published
  // and waiting for the workers), and cancelled runs of the last day whose applied and
  // dead-lettered events are fewer than they published. Oldest first. (A failed run's published
  // count may include events Kafka never took, so it is not waited for.)
  std::vector<RunInfo> unapplied(const std::string& source);
  // Marks running runs with a stale heartbeat failed and ends their runner's session, and published
  // runs that waited apply_wait_timeout for an applied event failed; their ids.
  std::vector<std::string> reap_stale(const std::string& source = "");
  void set_apply_wait_timeout(std::chrono::seconds timeout) { apply_wait_timeout_ = timeout; }

 private:
  bool try_lock(const std::string& source);
  void unlock(const std::string& source);

  pqxx::connection& conn_;
  std::chrono::milliseconds heartbeat_interval_;
  std::chrono::seconds apply_wait_timeout_ = kDefaultApplyWaitTimeout;
  std::set<std::string> claimed_;  // sources whose lock this session holds
};

std::string new_run_id(const std::string& source);

// Completes those of `run_ids` whose publishing is done and whose applied and dead-lettered events
// (leadsync.run_apply_stats) account for every event they published. Call it in the transaction
// that writes their run_apply_stats rows, after them and just before the commit: it takes a
// per-run transaction lock, so that of two transactions finishing one run concurrently the later
// one sees the other's rows. Returns the runs it completed.
std::vector<std::string> close_applied(pqxx::transaction_base& tx, const std::vector<std::string>& run_ids);

}  // namespace leadsync::common
