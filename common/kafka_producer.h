// An idempotent Kafka producer that never drops a message silently: produce() blocks while the
// local queue is full, and every message's delivery report is either counted or, for a tracked
// message, handed to its sender, which decides what an unacknowledged message means.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <atomic>
#include <chrono>
#include <cstdint>
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

// The delivery report of one tracked message: pending until librdkafka reports it.
class Delivery {
 public:
  enum class State { kPending, kDelivered, kFailed };
  State state() const { return state_.load(std::memory_order_acquire); }
  // Why it failed ("" unless kFailed).
  std::string error() const;

 private:
  friend class KafkaProducer;
  void settle(State state, std::string error);

  std::atomic<State> state_{State::kPending};
  mutable std::mutex mutex_;
  std::string error_;
};

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

  // As produce(), and returns the message's own delivery report, settled by poll() or flush().
  std::shared_ptr<const Delivery> produce_tracked(const std::string& topic, std::string_view key,
                                                  std::string_view value, const Headers& headers = {});

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
  void enqueue(const std::string& topic, std::string_view key, std::string_view value, const Headers& headers,
               int32_t partition, void* opaque);

  // The report callback must outlive the handle that calls it: declared first, destroyed last.
  Report report_;
  std::unique_ptr<RdKafka::Producer> handle_;
};

}  // namespace leadsync::common
