// The consuming half of the worker: polls the main topic and the retry tiers into batches, holds
// a retry tier's partition (paused, rewound to its head) until its head record is due, stores a
// batch's offsets once the batch is done, and keeps serving the group (heartbeats, rebalances)
// while the worker waits for its target with every partition paused.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <vector>

#include "common/config.h"
#include "common/kafka_consumer.h"
#include "workers/metrics.h"
#include "workers/record.h"
#include "workers/retry.h"

namespace leadsync::workers {

class ConsumeLoop {
 public:
  using Clock = std::chrono::steady_clock;

  ConsumeLoop(const common::Config& config, const RetryTiers& tiers, WorkerMetrics& metrics);

  // Called after each assignment (the worker's readiness depends on having partitions).
  void on_assigned(std::function<void()> listener) { on_assigned_ = std::move(listener); }

  // Adds records to the batch until it holds max_batch records, max_wait_ms passed since its first
  // record, or nothing arrived for about 100 ms. Undecodable records enter with their failure set.
  void poll(const std::atomic<bool>& stop);
  std::vector<Record>& batch() { return batch_; }

  // Resumes the held partitions whose time has come.
  void resume_due();
  // Pauses the partition and rewinds it to `offset`, until `until`.
  void hold(const TopicPartition& tp, int64_t offset, Clock::time_point until);

  // Stores, for each partition in the batch, the offset after its last record, and empties the batch.
  void finish_batch();

  // Pauses every partition (the worker waits for its target).
  void pause_all();
  // Serves the group for up to `timeout_ms` while paused: a partition assigned meanwhile is paused
  // and rewound, so that nothing is taken.
  void serve_paused(int timeout_ms);
  // Resumes every partition except the held ones.
  void resume_all();

  size_t assignment_size() { return consumer_.assignment_size(); }
  // Samples the consumer lag into its gauge, at most every 5 s.
  void sample_lag();
  // Commits the stored offsets and leaves the group.
  void close();

 private:
  bool accept(std::unique_ptr<RdKafka::Message> msg);
  void assigned(const common::KafkaConsumer::PartitionList& partitions);
  void revoked(const common::KafkaConsumer::PartitionList& partitions);

  const common::Config& config_;
  const RetryTiers& tiers_;
  WorkerMetrics& metrics_;
  common::KafkaConsumer consumer_;
  std::function<void()> on_assigned_;
  std::vector<Record> batch_;
  std::map<TopicPartition, Clock::time_point> held_;  // partitions paused until a time
  Clock::time_point next_lag_sample_ = Clock::now();
};

}  // namespace leadsync::workers
