#include "workers/retry.h"

#include <algorithm>
#include <chrono>

namespace leadsync::workers {
namespace {

int64_t to_int(const std::string& s) {
  try {
    return s.empty() ? 0 : std::stoll(s);
  } catch (const std::exception&) {
    return 0;
  }
}

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int64_t RetryTiers::delay_ms(int tier) const {
  int64_t d = config_.retry.base_ms;
  for (int i = 1; i < tier && d < config_.retry.max_ms; ++i) d *= 2;
  return std::min<int64_t>(d, config_.retry.max_ms);
}

Route RetryTiers::route(const Failure& failure, int attempt, int64_t now_ms) const {
  Route r;
  r.attempt = attempt + 1;
  if (failure.error_class != common::ErrorClass::kRetryable || attempt >= config_.retry.attempts) {
    r.topic = config_.dlq_topic;
    r.dead_letter = true;
    return r;
  }
  r.tier = attempt + 1;
  r.topic = config_.retry_topic(r.tier);
  r.not_before_ms = (now_ms ? now_ms : wall_ms()) + delay_ms(r.tier);
  return r;
}

common::Headers RetryTiers::headers(const RdKafka::Message& msg, const Failure& failure, const Route& route) const {
  // The original coordinates are those of the first failure: a record from a retry tier carries them.
  auto original_topic = common::header_value(msg, "leadsync-original-topic");
  std::string original_partition, original_offset;
  if (original_topic.empty()) {
    original_topic = msg.topic_name();
    original_partition = std::to_string(msg.partition());
    original_offset = std::to_string(msg.offset());
  } else {
    original_partition = common::header_value(msg, "leadsync-original-partition");
    original_offset = common::header_value(msg, "leadsync-original-offset");
  }
  common::Headers h{
      {"leadsync-attempt", std::to_string(route.attempt)},
      {"leadsync-error", failure.message},
      {"leadsync-error-class", common::error_class_name(failure.error_class)},
      {"leadsync-error-stage", failure.stage},
      {"leadsync-original-topic", original_topic},
      {"leadsync-original-partition", original_partition},
      {"leadsync-original-offset", original_offset},
      {"leadsync-failed-at-ms", std::to_string(wall_ms())},
  };
  if (!failure.field.empty()) h.emplace_back("leadsync-error-field", failure.field);
  if (!route.dead_letter) h.emplace_back("leadsync-not-before-ms", std::to_string(route.not_before_ms));
  return h;
}

int RetryTiers::attempt_of(const RdKafka::Message& msg) const {
  return static_cast<int>(to_int(common::header_value(msg, "leadsync-attempt")));
}

int64_t RetryTiers::not_before_ms(const RdKafka::Message& msg) const {
  return to_int(common::header_value(msg, "leadsync-not-before-ms"));
}

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max)
    : base_(base), max_(max), rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  auto d = base_.count();
  for (int i = 0; i < failures_ && d < max_.count(); ++i) d *= 2;
  d = std::min<int64_t>(d, max_.count());
  ++failures_;
  const auto jitter = static_cast<int64_t>(rng_() % static_cast<uint64_t>(d / 2 + 1));
  return std::chrono::milliseconds(d + jitter);
}

}  // namespace leadsync::workers
