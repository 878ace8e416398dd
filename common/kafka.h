// RAII wrappers around librdkafka's C++ API: an idempotent producer that never drops a message
// silently, a consumer with manual offset storage (offsets are stored only after the database
// commit), and topic creation through the admin API.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config.h"

namespace leadsync::common {

using Headers = std::vector<std::pair<std::string, std::string>>;

// Reads the last value of a header, or an empty string.
std::string header_value(const RdKafka::Message& msg, const std::string& name);

class KafkaProducer {
 public:
  // `overrides` are librdkafka properties applied after the config's `kafka.properties`.
  explicit KafkaProducer(const KafkaConfig& config, const std::map<std::string, std::string>& overrides = {});
  ~KafkaProducer();
  KafkaProducer(const KafkaProducer&) = delete;
  KafkaProducer& operator=(const KafkaProducer&) = delete;

  // Enqueues one message; while the local queue is full it serves delivery reports and retries,
  // so it blocks rather than drops. Throws std::runtime_error on a non-retryable enqueue error.
  void produce(const std::string& topic, std::string_view key, std::string_view value, const Headers& headers = {},
               int32_t partition = RdKafka::Topic::PARTITION_UA);

  // Fetches the topic's metadata now. librdkafka otherwise learns a new topic only at its next
  // periodic scan, which held every run's first event back by about a second.
  void warm_up(const std::string& topic, std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Waits until every enqueued message is acknowledged or has failed. Returns false on timeout.
  bool flush(std::chrono::milliseconds timeout);
  void poll(int timeout_ms = 0) { handle_->poll(timeout_ms); }

  uint64_t delivered() const { return report_.delivered.load(); }
  uint64_t failed() const { return report_.failed.load(); }
  std::string first_error() const;

 private:
  struct Report : RdKafka::DeliveryReportCb {
    void dr_cb(RdKafka::Message& message) override;
    std::atomic<uint64_t> delivered{0};
    std::atomic<uint64_t> failed{0};
    mutable std::mutex mutex;
    std::string first_error;
  };
  // The report callback must outlive the handle that calls it: declared first, destroyed last.
  Report report_;
  std::unique_ptr<RdKafka::Producer> handle_;
};

class KafkaConsumer {
 public:
  using PartitionList = std::vector<RdKafka::TopicPartition*>;
  // Called from inside consume() when partitions are revoked, before they go: the owner applies
  // and stores what it holds for them. Must not call consume().
  using RevokeHook = std::function<void(const PartitionList&)>;
  using AssignHook = std::function<void(const PartitionList&)>;

  KafkaConsumer(const KafkaConfig& config, const std::string& group,
                const std::map<std::string, std::string>& overrides = {});
  ~KafkaConsumer();  // closes (leaves the group) if close() was not called
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  void set_hooks(AssignHook on_assign, RevokeHook on_revoke);
  void subscribe(const std::vector<std::string>& topics);
  std::unique_ptr<RdKafka::Message> consume(int timeout_ms);
  // Marks `offset` (the next offset to read) as processed for the partition; committed by the
  // background auto-commit or by commit().
  void store_offset(const std::string& topic, int32_t partition, int64_t next_offset);
  void commit();  // synchronous commit of stored offsets; ignores "nothing to commit"
  void pause(const std::string& topic, int32_t partition);
  void resume(const std::string& topic, int32_t partition);
  void pause_all();
  void resume_all();
  // Rewinds the partition so that the next consume() returns `offset` again.
  void seek(const std::string& topic, int32_t partition, int64_t offset);
  size_t assignment_size();
  // Messages between the consumer's position and the high watermark, summed over the assignment,
  // from librdkafka's cached watermarks (no broker round trip).
  int64_t lag();
  void close();

 private:
  struct Rebalance : RdKafka::RebalanceCb {
    void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err, PartitionList& partitions) override;
    AssignHook on_assign;
    RevokeHook on_revoke;
  };
  Rebalance rebalance_;  // outlives handle_
  std::unique_ptr<RdKafka::KafkaConsumer> handle_;
  bool closed_ = false;
};

// Reads a topic without a consumer group (nothing is committed): the partitions, their high
// watermarks, and every message in a range of offsets. For operator commands and tests.
class TopicReader {
 public:
  TopicReader(const KafkaConfig& config, const std::string& topic,
              std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~TopicReader();
  TopicReader(const TopicReader&) = delete;
  TopicReader& operator=(const TopicReader&) = delete;

  int partitions() const { return partitions_; }
  std::vector<int64_t> high_watermarks();  // indexed by partition
  // Calls `visit` for each message in [from[p], high watermark now) of every partition, in
  // partition order, then offset order. `visit` returns false to stop early.
  void read(const std::vector<int64_t>& from, const std::function<bool(const RdKafka::Message&)>& visit);

 private:
  std::string topic_;
  std::chrono::milliseconds timeout_;
  int partitions_ = 0;
  std::unique_ptr<RdKafka::KafkaConsumer> handle_;
};

struct TopicSpec {
  std::string name;
  int partitions = 1;
  int replication_factor = -1;  // broker default
  std::map<std::string, std::string> configs;
};

// Creates the topics that do not exist yet; an existing topic is left as it is. Returns one line
// per topic saying what happened. Throws std::runtime_error naming the topic on failure.
std::vector<std::string> create_topics(const KafkaConfig& config, const std::vector<TopicSpec>& topics,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(30));
// Deletes topics (tests and `leadsyncctl topics --delete`); missing topics are not an error.
void delete_topics(const KafkaConfig& config, const std::vector<std::string>& topics,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The topics leadsync uses for a config: main, retry tiers, dead letters.
std::vector<TopicSpec> leadsync_topics(const KafkaConfig& config);

}  // namespace leadsync::common
