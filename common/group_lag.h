// How far a consumer group is behind its topics, read from the broker without joining the group
// (design.md §2): a consumer handle with the group's id that never subscribes only asks the
// coordinator for the committed offsets (OffsetFetch), so the group's members see no rebalance.
// Shared by `leadsyncctl exporter` (the lag metrics) and the producer's API (the status page).
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::common {

struct PartitionLag {
  int32_t partition = 0;
  int64_t committed = -1;  // the group's committed offset; -1: nothing committed yet
  int64_t low = 0;         // the oldest offset still in the partition
  int64_t high = 0;        // the offset the next message will get
  int64_t lag = 0;         // messages after the committed offset (all retained ones when none)
};

struct TopicLag {
  std::string topic;
  int64_t lag = 0;        // summed over the partitions
  int64_t committed = 0;  // the group's positions summed over the partitions: rises with progress
  std::vector<PartitionLag> partitions;
};

struct GroupLag {
  int64_t lag = 0;        // summed over the topics
  int64_t committed = 0;  // summed over the topics
  int members = 0;        // members of the group as its coordinator reports them
  std::vector<TopicLag> topics;  // in the order they were asked for
};

class GroupLagReader {
 public:
  GroupLagReader(const KafkaConfig& config, std::string group, std::vector<std::string> topics,
                 std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~GroupLagReader();
  GroupLagReader(const GroupLagReader&) = delete;
  GroupLagReader& operator=(const GroupLagReader&) = delete;

  // One sample from the broker. Throws std::runtime_error naming the topic or group that could
  // not be read (broker unreachable, topic missing).
  GroupLag sample();

 private:
  std::string group_;
  std::vector<std::string> topics_;
  int timeout_ms_;
  std::unique_ptr<RdKafka::KafkaConsumer> handle_;
};

// The topics the workers' group consumes: the main topic, then its retry tiers in order.
std::vector<std::string> worker_topics(const KafkaConfig& config);

}  // namespace leadsync::common
