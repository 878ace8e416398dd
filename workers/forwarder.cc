#include "workers/forwarder.h"

#include <spdlog/spdlog.h>

#include <memory>
#include <string_view>

namespace leadsync::workers {
namespace {

std::string_view key_of(const RdKafka::Message& m) {
  return {static_cast<const char*>(m.key_pointer()), m.key_len()};
}

std::string_view payload_of(const RdKafka::Message& m) { return {static_cast<const char*>(m.payload()), m.len()}; }

struct Pending {
  const Record* record;
  Route route;
  std::shared_ptr<const common::Delivery> delivery;
};

}  // namespace

Forwarder::Forwarder(const common::KafkaConfig& config, const RetryTiers& tiers, WorkerMetrics& metrics)
    : tiers_(tiers), metrics_(metrics), producer_(config, {{"linger.ms", "1"}}) {}

ForwardResult Forwarder::forward(const std::vector<Record>& batch, std::chrono::milliseconds timeout) {
  ForwardResult result;
  std::vector<Pending> pending;
  for (const auto& r : batch) {
    if (!r.failure) continue;
    const auto route = tiers_.route(*r.failure, r.attempt);
    try {
      pending.push_back({&r, route,
                         producer_.produce_tracked(route.topic, key_of(*r.message), payload_of(*r.message),
                                                   tiers_.headers(*r.message, *r.failure, route))});
    } catch (const std::exception& e) {  // not even enqueued (e.g. larger than the client allows)
      if (result.first_error.empty()) result.first_error = e.what();
      result.unacknowledged.push_back(&r);
    }
  }
  if (pending.empty()) return result;
  producer_.flush(timeout);  // serves every delivery report that arrives in time
  for (const auto& p : pending) {
    const auto& r = *p.record;
    if (p.delivery->state() != common::Delivery::State::kDelivered) {
      if (result.first_error.empty()) {
        result.first_error = p.delivery->state() == common::Delivery::State::kFailed
                                 ? p.delivery->error()
                                 : "no delivery report from " + p.route.topic + " in time";
      }
      result.unacknowledged.push_back(&r);
      continue;
    }
    if (p.route.dead_letter) {
      metrics_.dead_lettered(r.failure->error_class).Increment();
      result.dead_lettered[r.event->run_id()].failed++;
      spdlog::warn("worker: {} dead-lettered ({}: {}) from {}[{}]@{}",
                   r.message->key() ? *r.message->key() : std::string("(no key)"),
                   common::error_class_name(r.failure->error_class), r.failure->message, r.message->topic_name(),
                   r.message->partition(), r.message->offset());
    } else {
      metrics_.retried(p.route.tier).Increment();
    }
  }
  return result;
}

}  // namespace leadsync::workers
