// Retry tiers and dead letters (design.md §2, R5): where a failed record goes next, when it is due,
// and the headers that carry its error context. The payload is never changed.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>

#include "common/config.h"
#include "common/errors.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"

namespace leadsync::workers {

struct Failure {
  common::ErrorClass error_class;
  std::string stage;    // decode | validation | database
  std::string message;  // what was wrong
  std::string field;    // the failing field, when known
};

struct Route {
  std::string topic;
  int tier = 0;  // 1..attempts for a retry tier, 0 for the dead-letter topic
  bool dead_letter = false;
  int64_t not_before_ms = 0;  // wall-clock ms when a retry is due
  int attempt = 0;            // the attempt number the record will carry
};

class RetryTiers {
 public:
  explicit RetryTiers(const common::KafkaConfig& config) : config_(config) {}

  // Delay of tier N (1-based): base·2^(N-1), capped at max.
  int64_t delay_ms(int tier) const;
  // Permanent failures and the last tier's failures go to the dead-letter topic; a retryable one
  // goes to tier attempt+1.
  Route route(const Failure& failure, int attempt, int64_t now_ms = 0) const;
  common::Headers headers(const RdKafka::Message& msg, const Failure& failure, const Route& route) const;

  int attempt_of(const RdKafka::Message& msg) const;
  int64_t not_before_ms(const RdKafka::Message& msg) const;

 private:
  const common::KafkaConfig& config_;
};

// Exponential backoff with jitter for a wait that repeats while a condition lasts (a target that
// stays unavailable, a topic that keeps refusing forwards): the n-th consecutive wait is drawn
// from [d, 1.5·d] with d = base·2^(n-1), capped at `max`, so that workers restarted together do
// not retry in step.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max);
  std::chrono::milliseconds next();
  void reset() { failures_ = 0; }
  int failures() const { return failures_; }

 private:
  std::chrono::milliseconds base_, max_;
  int failures_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace leadsync::workers
