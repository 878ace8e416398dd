// One run of one source (design.md §3, §6): read the snapshot, map, diff against the checksums
// stored from the last run (R9), publish only new and changed records and a DELETE per vanished
// key, and advance the stored state only after Kafka acknowledged every event of the run (R13).
//
// The run is the run store's (common/runs.h): claimed (one runner per source), heartbeated with
// its progress, obeying cancel and pause between batches, and checkpointed: every few seconds,
// once Kafka acknowledged what came before, the adapter's checkpoint and the keys read so far are
// stored, and the next run after a crash or a pause resumes there (SourceAdapter::resume). A source
// whose last completed run left a cursor that the adapter accepts (changes_since) is read
// incrementally: only what changed, deletes as such, and records not read are not deletions.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>

#include <chrono>
#include <optional>
#include <cstdint>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/kafka_producer.h"
#include "common/run_status.h"
#include "common/runs.h"
#include "producers/registry.h"
#include "producers/source.h"

namespace leadsync::producers {

struct RunReport {
  std::string run_id;
  std::string source;
  // completed | failed | cancelled once run() returns. `completed` is the end of publishing: in
  // leadsync.sync_runs the run stays `running` (published_at set) until the workers applied every
  // event it published, then becomes `completed` (common/runs.h).
  common::RunStatus status = common::RunStatus::kRunning;
  std::string message;
  std::string resumed_from;         // the interrupted run this one continued
  bool incremental = false;         // read through changes_since()
  bool paused = false;              // cancelled because its source was paused (its checkpoint kept)
  bool snapshot_unchanged = false;  // short-circuited on the snapshot hash
  uint64_t rows_read = 0;           // data records read (blank lines excluded)
  uint64_t new_records = 0;
  uint64_t changed_records = 0;
  uint64_t unchanged_records = 0;
  uint64_t deleted_records = 0;
  uint64_t failed_records = 0;  // records that could not be mapped (see leadsync.run_errors)
  uint64_t events_published = 0;
  double seconds = 0;
};

struct ProducerMetrics {
  explicit ProducerMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& runs;
  prometheus::Family<prometheus::Counter>& rows;
  prometheus::Family<prometheus::Counter>& events;
  prometheus::Family<prometheus::Histogram>& duration;
  prometheus::Family<prometheus::Gauge>& last_success;
};

// Whether a run may delete more than the source's max_delete_fraction of its records
// (leadsync-producer --allow-mass-delete; the source's allow_mass_delete says the same).
enum class MassDelete { kGuarded, kAllowed };
// Whether a run diffs against the stored per-key state (R9) or publishes every record
// (leadsync-producer --full; also what a new, truncated or restored target gets).
enum class StateUse { kIncremental, kFull };

struct RunOptions {
  MassDelete mass_delete = MassDelete::kGuarded;
  StateUse state = StateUse::kIncremental;
  // Why a new run starts (a queued run, i.e. a trigger, keeps its own); --full makes it kFull.
  common::RunTrigger trigger = common::RunTrigger::kSchedule;
  // How often the adapter's checkpoint is stored (each after Kafka acknowledged everything before it).
  // Unset: the config's
  // runs.checkpoint_interval (10 s: every key read goes to PostgreSQL with the checkpoint, so a short
  // run, like a 300,000-row sheet whose 1% changed reads in 2.6 s, stores none).
  std::optional<std::chrono::milliseconds> checkpoint_every{};
};

class SyncRunner {
 public:
  SyncRunner(const common::Config& config, common::KafkaProducer& producer, ProducerMetrics* metrics,
             RunOptions options = {});
  // Runs the source once (its queued run if there is one). Never throws for a failed run: the
  // failure is in the report and in leadsync.sync_runs. `adapter` may be passed by tests; by
  // default it is built from the config.
  RunReport run(const common::SourceConfig& source, std::unique_ptr<SourceAdapter> adapter = nullptr);

 private:
  const common::Config& config_;
  common::KafkaProducer& producer_;
  ProducerMetrics* metrics_;
  RunOptions options_;
};

}  // namespace leadsync::producers
