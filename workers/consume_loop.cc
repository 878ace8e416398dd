#include "workers/consume_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <set>

namespace leadsync::workers {
namespace {

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

ConsumeLoop::ConsumeLoop(const common::Config& config, const RetryTiers& tiers, WorkerMetrics& metrics)
    : config_(config), tiers_(tiers), metrics_(metrics), consumer_(config.kafka, config.kafka.group) {
  consumer_.set_hooks([this](const auto& partitions) { assigned(partitions); },
                      [this](const auto& partitions) { revoked(partitions); });
  std::vector<std::string> topics{config.kafka.topic};
  for (int tier = 1; tier <= config.kafka.retry.attempts; ++tier) topics.push_back(config.kafka.retry_topic(tier));
  consumer_.subscribe(topics);
}

void ConsumeLoop::poll(const std::atomic<bool>& stop) {
  const auto max_batch = static_cast<std::size_t>(config_.worker.max_batch);
  std::optional<Clock::time_point> deadline;
  while (batch_.size() < max_batch && !stop.load()) {
    int timeout_ms = 100;
    if (deadline) {
      timeout_ms =
          static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count());
      if (timeout_ms <= 0) break;
    }
    auto msg = consumer_.consume(timeout_ms);
    if (!msg || msg->err() == RdKafka::ERR__TIMED_OUT) {
      if (!deadline) return;  // idle: let the loop beat its heartbeat
      continue;
    }
    if (msg->err() != RdKafka::ERR_NO_ERROR) {
      spdlog::warn("kafka: {}", msg->errstr());
      continue;
    }
    if (accept(std::move(msg)) && !deadline) {
      deadline = Clock::now() + std::chrono::milliseconds(config_.worker.max_wait_ms);
    }
  }
}

// Takes a message into the batch, or holds it back when it belongs to a partition that waits.
bool ConsumeLoop::accept(std::unique_ptr<RdKafka::Message> msg) {
  const TopicPartition tp{msg->topic_name(), msg->partition()};
  if (held_.count(tp)) return false;  // re-read after the partition resumes
  Record r;
  r.attempt = tiers_.attempt_of(*msg);
  if (const auto due_ms = tiers_.not_before_ms(*msg); due_ms > 0) {
    const auto wait_ms = due_ms - wall_ms();
    if (wait_ms > 0) {
      // A tier's records share one delay, so its head is the earliest due: wait on it without
      // sleeping the poll loop, by pausing the partition and rewinding to the head.
      hold(tp, msg->offset(), Clock::now() + std::chrono::milliseconds(wait_ms));
      return false;
    }
  }
  if (!r.event.ParseFromArray(msg->payload(), static_cast<int>(msg->len()))) {
    r.failure = Failure{common::ErrorClass::kPermanent, "decode", "payload is not a leadsync.v1.ChangeEvent", ""};
  }
  r.message = std::move(msg);
  metrics_.consumed(r.message->topic_name()).Increment();
  batch_.push_back(std::move(r));
  return true;
}

void ConsumeLoop::hold(const TopicPartition& tp, int64_t offset, Clock::time_point until) {
  consumer_.pause(tp.first, tp.second);
  consumer_.seek(tp.first, tp.second, offset);
  held_[tp] = until;
  // Records after the head in this partition that are already in the batch stay; nothing after
  // the head is taken until it resumes, so the partition's processed records remain a prefix.
}

void ConsumeLoop::resume_due() {
  const auto now = Clock::now();
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second <= now) {
      consumer_.resume(it->first.first, it->first.second);
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
}

void ConsumeLoop::finish_batch() {
  std::map<TopicPartition, int64_t> next;
  for (const auto& r : batch_) {
    auto& n = next[r.partition()];
    n = std::max(n, r.offset() + 1);
  }
  for (const auto& [tp, offset] : next) consumer_.store_offset(tp.first, tp.second, offset);
  batch_.clear();
}

void ConsumeLoop::assigned(const common::KafkaConsumer::PartitionList& partitions) {
  metrics_.assigned.Increment(static_cast<double>(partitions.size()));
  if (on_assigned_) on_assigned_();
}

void ConsumeLoop::revoked(const common::KafkaConsumer::PartitionList& partitions) {
  std::set<TopicPartition> gone;
  for (const auto* p : partitions) gone.insert({p->topic(), p->partition()});
  // Records of revoked partitions not yet applied are dropped: their offsets were not stored, so
  // the new owner reads them again.
  std::erase_if(batch_, [&](const Record& r) { return gone.count(r.partition()) > 0; });
  for (const auto& tp : gone) held_.erase(tp);
  metrics_.assigned.Decrement(static_cast<double>(partitions.size()));
  consumer_.commit();
}

void ConsumeLoop::pause_all() { consumer_.pause_all(); }

void ConsumeLoop::serve_paused(int timeout_ms) {
  auto msg = consumer_.consume(timeout_ms);
  if (msg && msg->err() == RdKafka::ERR_NO_ERROR) {
    // A partition assigned during the wait: hold it until the target is back.
    consumer_.pause(msg->topic_name(), msg->partition());
    consumer_.seek(msg->topic_name(), msg->partition(), msg->offset());
  }
}

void ConsumeLoop::resume_all() {
  consumer_.resume_all();
  for (const auto& [tp, until] : held_) consumer_.pause(tp.first, tp.second);  // tiers keep waiting
}

void ConsumeLoop::sample_lag() {
  if (Clock::now() < next_lag_sample_) return;
  metrics_.lag.Set(static_cast<double>(consumer_.lag()));
  next_lag_sample_ = Clock::now() + std::chrono::seconds(5);
}

void ConsumeLoop::close() {
  consumer_.commit();
  consumer_.close();
}

}  // namespace leadsync::workers
