// One consumed record on its way through a batch: the Kafka message it came in (its coordinates
// decide which offsets may be stored), the decoded event, how often it was tried before, and why
// it failed, once it has.
#pragma once

#include <librdkafka/rdkafka.h>
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

// The client's handle of a message's topic: telling topics apart without copying their names
// (topic_name() returns a fresh string), in the loops that run for every record.
inline const void* topic_handle(const RdKafka::Message& m) {
  return const_cast<RdKafka::Message&>(m).c_ptr()->rkt;  // c_ptr() only reads, but is not const
}

// A record's decoded event. The consume loop decodes a batch's events into one protobuf arena that
// lives until the batch is finished: a decoded event is a map of strings, and allocating and freeing
// each of them one by one was about a quarter of the worker's CPU per event
// (bench/micro/worker_cpu.cc). A record made anywhere else (tests, tools) owns its event, created on
// first use.
class RecordEvent {
 public:
  RecordEvent() = default;
  explicit RecordEvent(common::ChangeEvent* in_arena) : event_(in_arena) {}
  RecordEvent& operator=(const common::ChangeEvent& e) {
    *get() = e;
    return *this;
  }

  common::ChangeEvent* get() {
    if (!event_) {
      owned_ = std::make_unique<common::ChangeEvent>();
      event_ = owned_.get();
    }
    return event_;
  }
  const common::ChangeEvent* get() const { return event_ ? event_ : &common::ChangeEvent::default_instance(); }
  common::ChangeEvent* operator->() { return get(); }
  const common::ChangeEvent* operator->() const { return get(); }
  common::ChangeEvent& operator*() { return *get(); }
  const common::ChangeEvent& operator*() const { return *get(); }

 private:
  std::unique_ptr<common::ChangeEvent> owned_;  // when not in an arena
  common::ChangeEvent* event_ = nullptr;        // owned_ or in the batch's arena
};

struct Record {
  std::unique_ptr<RdKafka::Message> message;
  RecordEvent event;
  int attempt = 0;  // 0 on the main topic, N after N failed attempts
  std::optional<Failure> failure;

  TopicPartition partition() const { return {message->topic_name(), message->partition()}; }
  int64_t offset() const { return message->offset(); }
};

}  // namespace leadsync::workers
