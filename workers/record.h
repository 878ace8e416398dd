// One consumed record on its way through a batch: the Kafka message it came in (its coordinates
// decide which offsets may be stored), the decoded event, how often it was tried before, and why
// it failed, once it has.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "common/mapping.h"
#include "workers/retry.h"

namespace leadsync::workers {

using TopicPartition = std::pair<std::string, int32_t>;

struct Record {
  std::unique_ptr<RdKafka::Message> message;
  common::ChangeEvent event;
  int attempt = 0;  // 0 on the main topic, N after N failed attempts
  std::optional<Failure> failure;

  TopicPartition partition() const { return {message->topic_name(), message->partition()}; }
  int64_t offset() const { return message->offset(); }
};

}  // namespace leadsync::workers
