// One worker, several connections (`worker.connections`): a batch is applied over all of them at
// once, each connection (a lane) taking whole partitions of it. A worker alone otherwise waits for
// its database on every batch while the database waits for the worker's next one; with lanes one
// lane's statement runs while another's parameters are built and its round trips are in flight, as
// with two workers, but in one consumer (bench/README.md, issue 12 — "apply lanes").
//
// Nothing about a record changes: a partition's records stay in one lane, in offset order, and a
// key lives in one partition of the main topic. (A retried event of a key, in a retry tier's
// partition, may meet a newer one of the key in another lane: the version guard orders them and the
// row lock makes one lane wait for the other, as between two workers.) Each lane commits its own
// transaction, with the applied offsets of its own partitions, so a lane that fails leaves the
// others' work committed: the worker tries the batch again, and what a lane committed is skipped as
// applied (the offsets in PostgreSQL say so), not applied or counted twice.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <vector>

#include "workers/apply_target.h"

namespace leadsync::workers {

class LanedTarget : public ApplyTarget {
 public:
  explicit LanedTarget(std::vector<std::unique_ptr<ApplyTarget>> lanes);

  // Connects every lane that is not available; true when all are.
  bool connect() override;
  bool available() const override;

  // Splits `records` by partition over the lanes (each partition whole, the lanes' record counts as
  // even as the partitions allow), applies the lanes at once and adds up their counts. When a lane
  // throws, the others are waited for first; then the first lane's TargetUnavailable (or error) is
  // thrown, and what the other lanes committed is counted in the batch's next return.
  RunCounts apply(const std::vector<Record*>& records) override;

  void count_dead_letters(const RunCounts& per_run) override;
  // Every lane settles its partitions; the dead letters are counted by the first lane, after the
  // others settled, so that a lane that throws (the caller settles again) counts nothing twice.
  void settle(const RunCounts& dead_lettered, const std::map<TopicPartition, int64_t>& rewind) override;

  // Which lane takes each record of `records`: whole partitions, largest first to the lane with the
  // fewest records so far. Records without a Kafka message go to lane 0. Exposed for tests.
  static std::vector<std::size_t> assign(const std::vector<Record*>& records, std::size_t lanes);

 private:
  std::vector<std::unique_ptr<ApplyTarget>> lanes_;
  RunCounts carried_;  // what lanes committed in an attempt that another lane failed
};

}  // namespace leadsync::workers
