// The consuming half of the worker: polls the main topic and the retry tiers into batches, holds
// a retry tier's partition (paused, rewound to its head) until its head record is due, stores a
// batch's offsets once the batch is done, and keeps serving the group (heartbeats, rebalances)
// while the worker waits for its target with every partition paused.
//
// The main topic and the retry tiers are read by two consumers (two members of the same group):
// one subscription over both let the assignor balance only the total partition count, so a second
// worker could be given every tier partition and none of the main topic, and sit idle.
//
// With `worker.instance_id` both are static members (`<id>-main`, `<id>-tiers`). A dynamic member
// killed without leaving stays in the group until its session times out, and its restart makes
// the group rebalance meanwhile. During that rebalance librdkafka commits nothing: its auto-commit
// skips while the group is not settled, and an explicit commit waits behind the pending JoinGroup
// and is then refused for its old generation. So the other workers apply for up to a session
// timeout (10 s; with a crash every few seconds, tens of seconds) without committing, and the
// next crash replays all of it, dead-lettering each poison record among it once more. A static
// member restarted under its id takes back its partitions without a rebalance.
#pragma once

#include <google/protobuf/arena.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <vector>

#include "common/config.h"
#include "common/kafka_consumer.h"
#include "workers/metrics.h"
#include "workers/record.h"
#include "workers/retry.h"

namespace leadsync::workers {

// A consumer of the loop hit a fatal error: with an instance id, the member was fenced (another
// member took over its group.instance.id). librdkafka 2.0 also fences a member by itself when its
// session timed out (a broker down for longer than the session) and an OffsetCommit of its old
// member id arrives after it joined again. The consumers cannot be used any more.
class ConsumerFenced : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ConsumeLoop {
 public:
  using Clock = std::chrono::steady_clock;

  ConsumeLoop(const common::Config& config, const RetryTiers& tiers, WorkerMetrics& metrics);

  // Called after each assignment (the worker's readiness depends on having partitions).
  void on_assigned(std::function<void()> listener) { on_assigned_ = std::move(listener); }

  // Adds records to the batch until it holds max_batch records, nothing more arrived for kQuietGap
  // after its latest record, max_wait_ms passed since its first record, or (empty) nothing arrived
  // for about 100 ms. Undecodable records enter with their failure set.
  void poll(const std::atomic<bool>& stop);
  std::vector<Record>& batch() { return batch_; }

  // Resumes the held partitions whose time has come.
  void resume_due();
  // Pauses the partition and rewinds it to `offset`, until `until`.
  void hold(const TopicPartition& tp, int64_t offset, Clock::time_point until);

  // Stores, for each partition in the batch, the offset after its last record, and empties the
  // batch. A partition in `rewind` stores only up to the given offset (its first record that is not
  // done) and is held there for `backoff`, so that the record is read again, never skipped.
  void finish_batch(const std::map<TopicPartition, int64_t>& rewind = {},
                    std::chrono::milliseconds backoff = std::chrono::milliseconds(0));

  // Pauses every partition (the worker waits for its target).
  void pause_all();
  // Serves the group for up to `timeout_ms` while paused: a partition assigned meanwhile is paused
  // and rewound, so that nothing is taken.
  void serve_paused(int timeout_ms);
  // Resumes every partition except the held ones.
  void resume_all();

  size_t assignment_size();
  // Samples the consumer lag into its gauge, at most every 5 s.
  void sample_lag();
  // Commits the stored offsets and leaves the group.
  void close();

 private:
  // Takes a message in; true when it was a message at all (not a timeout), and sets `accepted`.
  bool receive(std::unique_ptr<RdKafka::Message> msg, bool& accepted);
  bool accept(std::unique_ptr<RdKafka::Message> msg);
  common::KafkaConsumer& consumer_of(const std::string& topic);
  prometheus::Counter& consumed_counter(const RdKafka::Message& msg);
  void assigned(const common::KafkaConsumer::PartitionList& partitions);
  void revoked(common::KafkaConsumer& consumer, const common::KafkaConsumer::PartitionList& partitions);

  google::protobuf::ArenaOptions arena_options();

  const common::Config& config_;
  const RetryTiers& tiers_;
  WorkerMetrics& metrics_;
  std::function<void()> on_assigned_;
  // The batch's events live in arena_ (record.h), which starts in arena_block_; both outlive batch_.
  static constexpr std::size_t kArenaBlockBytes = 8 << 20;
  std::vector<char> arena_block_;
  google::protobuf::Arena arena_;
  std::vector<Record> batch_;
  std::map<TopicPartition, Clock::time_point> held_;  // partitions paused until a time
  Clock::time_point next_lag_sample_ = Clock::now();
  const void* consumed_topic_ = nullptr;          // the topic handle of consumed_
  prometheus::Counter* consumed_ = nullptr;
  double first_age_ms_ = 0;  // debug log: the age of the batch's first record when taken
  static constexpr int kTierLookEvery = 64;       // main-topic messages between looks at the tiers
  // A batch is complete when nothing arrived for this long after its latest record: a bulk load's
  // messages come from the client's prefetched queue back to back, while a stream's are applied
  // when they come instead of waiting out max_wait_ms (bench/README.md, issue 12 — S4 latency).
  static constexpr std::chrono::milliseconds kQuietGap{2};
  // Declared last, destroyed first: closing them runs the revoke hook, which uses the batch.
  // [0] reads the main topic, [1] (when there are tiers) the retry tiers.
  std::vector<std::unique_ptr<common::KafkaConsumer>> consumers_;
};

}  // namespace leadsync::workers
