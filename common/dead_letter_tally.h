// Dead letters per source and error class (issue 10, the status page): counted from the
// dead-letter topic itself, which is where the workers' forwarder puts them (workers/forwarder.cc,
// payload unchanged, the class in the `leadsync-error-class` header). The topic is read
// incrementally — each update() reads only what was added since the last one — so the counts stay
// exact without a table of their own, and memory stays bounded by (configured sources + 1) × the
// known error classes plus one offset per partition, however many dead letters there are.
//
// What is counted: every dead letter still retained in the topic when the reader started (the
// topic keeps them 30 days), plus every one written since. A dead letter replayed by `leadsyncctl
// dlq replay` stays in the topic and stays counted, as `leadsyncctl dlq list` still lists it.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"

namespace leadsync::common {

// The counting itself, without Kafka. A dead letter belongs to the source named in its payload (a
// ChangeEvent) when that source is configured; one whose payload is not a ChangeEvent, or names
// no configured source, is "unattributed". A class other than the known ones counts as "other".
class DeadLetterCounts {
 public:
  using ByClass = std::map<std::string, int64_t>;

  explicit DeadLetterCounts(std::set<std::string> sources);

  void add(std::string_view payload, const std::string& error_class);

  const ByClass& of(const std::string& source) const;  // empty when it has none
  const ByClass& unattributed() const { return unattributed_; }
  int64_t total() const { return total_; }

 private:
  std::set<std::string> sources_;
  std::map<std::string, ByClass> by_source_;
  ByClass unattributed_;
  int64_t total_ = 0;
};

// Reads the dead-letter topic with a consumer outside any group (nothing is committed).
class DeadLetterTally {
 public:
  DeadLetterTally(const KafkaConfig& config, std::set<std::string> sources,
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~DeadLetterTally();
  DeadLetterTally(const DeadLetterTally&) = delete;
  DeadLetterTally& operator=(const DeadLetterTally&) = delete;

  // Counts the dead letters written since the last call, at most `budget` of them; returns true
  // when it reached the end of every partition. Throws std::runtime_error naming the topic when
  // the broker cannot be read; what was counted before the error stays counted exactly once.
  bool update(int64_t budget = 100'000);

  const DeadLetterCounts& counts() const { return counts_; }
  const std::string& topic() const { return topic_; }

 private:
  KafkaConfig config_;
  std::string topic_;
  int timeout_ms_;
  DeadLetterCounts counts_;
  std::vector<int64_t> next_;  // per partition: the next offset to count
  std::unique_ptr<RdKafka::KafkaConsumer> handle_;  // metadata and watermarks only: never assigned
};

}  // namespace leadsync::common
