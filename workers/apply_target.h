// Where a worker applies its batches (design.md §4). One interface for every target (PostgreSQL
// today, a CRM next): apply a batch and say, per record, what became of it; say when the target
// cannot take batches at all, so that the worker waits instead of failing records that are fine.
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "workers/apply_counts.h"
#include "workers/record.h"

namespace leadsync::workers {

// Counts per run_id ("" for events without one).
using RunCounts = std::map<std::string, ApplyCounts>;

// Why a target cannot take a batch. Nothing is wrong with the records in either case.
enum class Unavailability {
  kOutage,  // unreachable: reconnect, then try the batch again
  kMisfit,  // reachable, but the batch fails for reasons of the deployment (schema, privileges, resources)
};

class TargetUnavailable : public std::runtime_error {
 public:
  TargetUnavailable(Unavailability kind, const std::string& what) : std::runtime_error(what), kind_(kind) {}
  Unavailability kind() const noexcept { return kind_; }

 private:
  Unavailability kind_;
};

class ApplyTarget {
 public:
  virtual ~ApplyTarget() = default;

  // One connection attempt; true when the target can take batches now.
  virtual bool connect() = 0;
  virtual bool available() const = 0;

  // Applies the records that have no failure yet. A record that cannot be applied gets its
  // failure (stage, class, reason); the others still apply. Returns what was applied per run.
  // Throws TargetUnavailable when nothing could be applied for reasons outside the records: the
  // caller tries the same records again later.
  virtual RunCounts apply(const std::vector<Record*>& records) = 0;

  // Adds dead-lettered records to the run statistics; best effort (a failure is logged).
  virtual void count_dead_letters(const RunCounts& per_run) = 0;

  // Called once the batch's failed records were forwarded (retry tier or dead-letter topic), before
  // its Kafka offsets are stored: counts the dead-lettered ones and records how far each partition
  // of the batch is done (`rewind`: partitions read again from the given offset). Throws
  // TargetUnavailable when that cannot be stored now; the caller calls it again once the target is
  // back. By default the dead letters are counted, best effort.
  virtual void settle(const RunCounts& dead_lettered, const std::map<TopicPartition, int64_t>& rewind) {
    (void)rewind;
    count_dead_letters(dead_lettered);
  }
};

}  // namespace leadsync::workers
