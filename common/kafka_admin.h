// Topic administration (creation, deletion) through librdkafka's admin API, and a reader of a
// topic's messages outside any consumer group, for operator commands and tests.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::common {

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

// Sets `configs` on an existing topic (AlterConfigs: the topic's other dynamic settings return to
// the broker's defaults). For operators and the failure-injection tests. Throws naming the topic.
void set_topic_configs(const KafkaConfig& config, const std::string& topic,
                       const std::map<std::string, std::string>& configs,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The topics leadsync uses for a config: main, retry tiers, dead letters.
std::vector<TopicSpec> leadsync_topics(const KafkaConfig& config);

}  // namespace leadsync::common
