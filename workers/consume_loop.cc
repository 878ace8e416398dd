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

// The batch's arena starts in a block of its own that every batch reuses (a batch of 5,000 lead
// events takes about 4 MB), and grows by blocks of up to 8 MiB beyond it.
google::protobuf::ArenaOptions ConsumeLoop::arena_options() {
  google::protobuf::ArenaOptions options;
  options.initial_block = arena_block_.data();
  options.initial_block_size = arena_block_.size();
  options.start_block_size = 1 << 20;
  options.max_block_size = 8 << 20;
  return options;
}

ConsumeLoop::ConsumeLoop(const common::Config& config, const RetryTiers& tiers, WorkerMetrics& metrics)
    : config_(config), tiers_(tiers), metrics_(metrics), arena_block_(kArenaBlockBytes), arena_(arena_options()) {
  std::vector<std::vector<std::string>> subscriptions{{config.kafka.topic}};
  if (config.kafka.retry.attempts > 0) subscriptions.emplace_back();
  for (int tier = 1; tier <= config.kafka.retry.attempts; ++tier) {
    subscriptions.back().push_back(config.kafka.retry_topic(tier));
  }
  for (const auto& topics : subscriptions) {
    std::map<std::string, std::string> overrides;
    if (!config.worker.instance_id.empty()) {
      overrides["group.instance.id"] = config.worker.instance_id + (consumers_.empty() ? "-main" : "-tiers");
    }
    auto consumer = std::make_unique<common::KafkaConsumer>(config.kafka, config.kafka.group, overrides);
    auto* c = consumer.get();
    consumer->set_hooks([this](const auto& partitions) { assigned(partitions); },
                        [this, c](const auto& partitions) { revoked(*c, partitions); });
    consumer->subscribe(topics);
    consumers_.push_back(std::move(consumer));
  }
}

common::KafkaConsumer& ConsumeLoop::consumer_of(const std::string& topic) {
  return topic == config_.kafka.topic || consumers_.size() == 1 ? *consumers_[0] : *consumers_[1];
}

void ConsumeLoop::poll(const std::atomic<bool>& stop) {
  const auto max_batch = static_cast<std::size_t>(config_.worker.max_batch);
  const auto idle_until = Clock::now() + std::chrono::milliseconds(100);
  std::optional<Clock::time_point> deadline;  // max_wait_ms after the batch's first record
  Clock::time_point quiet_until{};            // kQuietGap after its latest record
  Clock::time_point first_at{};
  const auto arrived = [&] {
    const auto now = Clock::now();
    if (!deadline) {
      deadline = now + std::chrono::milliseconds(config_.worker.max_wait_ms);
      first_at = now;
      first_age_ms_ = 0;  // unknown: the first record did not decode or carries no observed_at
      if (spdlog::should_log(spdlog::level::debug) && !batch_.empty() && batch_.front().event->observed_at_micros()) {
        first_age_ms_ = static_cast<double>(wall_ms() * 1000 - batch_.front().event->observed_at_micros()) / 1e3;
      }
    }
    quiet_until = now + kQuietGap;
  };
  // At debug, one line per batch: where its first record's time went before the apply (bench/README.md,
  // issue 12 — S4 latency): its age when taken (observed_at -> here: the producer's linger, the broker,
  // the fetch, and any wait behind the previous batch), and how long the batch then took to fill.
  const auto complete = [&](const char* why) {
    if (!batch_.empty() && spdlog::should_log(spdlog::level::debug)) {
      spdlog::debug("batch: {} records ({}), first record {:.1f} ms old when taken, filled in {:.1f} ms", batch_.size(),
                    why, first_age_ms_, std::chrono::duration<double, std::milli>(Clock::now() - first_at).count());
    }
  };
  int from_main = 0;  // messages taken from the main topic since the tiers were last looked at
  while (batch_.size() < max_batch && !stop.load()) {
    bool received = false, accepted = false;
    // Neither consumer waits first, so that neither starves the other: the main topic message after
    // message, the tiers after every kTierLookEvery of those and whenever the main topic has none.
    // (A consume(0) on the mostly idle tier consumer for every main-topic message cost CPU per row.)
    received = receive(consumers_[0]->consume(0), accepted);
    if (consumers_.size() > 1 && (!received || ++from_main >= kTierLookEvery)) {
      from_main = 0;
      received |= receive(consumers_[1]->consume(0), accepted);
    }
    if (accepted) arrived();
    if (received) continue;
    // Nothing queued. A batch is complete once nothing more arrived for kQuietGap (a stream's events
    // are applied now, not after max_wait_ms), and at the latest max_wait_ms after its first record.
    const auto now = Clock::now();
    const auto until = deadline ? std::min(*deadline, quiet_until) : idle_until;
    if (now >= until) {  // batch complete, or idle: let the loop beat its heartbeat
      complete(deadline && now >= *deadline ? "max_wait_ms" : "quiet");
      return;
    }
    // ...then a short wait on the main topic; the tiers are looked at again within 10 ms.
    const auto wait_ms = std::clamp<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(until - now).count(), 1, 10);
    receive(consumers_[0]->consume(static_cast<int>(wait_ms)), accepted);
    if (accepted) arrived();
  }
  complete(batch_.size() >= max_batch ? "max_batch" : "stopping");
}

bool ConsumeLoop::receive(std::unique_ptr<RdKafka::Message> msg, bool& accepted) {
  if (!msg || msg->err() == RdKafka::ERR__TIMED_OUT) return false;
  if (msg->err() == RdKafka::ERR__FATAL) throw ConsumerFenced("kafka consumer: " + msg->errstr());
  if (msg->err() != RdKafka::ERR_NO_ERROR) {
    spdlog::warn("kafka: {}", msg->errstr());
    return true;
  }
  accepted |= accept(std::move(msg));
  return true;
}

// Takes a message into the batch, or holds it back when it belongs to a partition that waits.
// (The topic name is copied only when a partition waits: this runs for every message.)
bool ConsumeLoop::accept(std::unique_ptr<RdKafka::Message> msg) {
  if (!held_.empty() && held_.count({msg->topic_name(), msg->partition()})) return false;  // re-read on resume
  Record r;
  r.event = RecordEvent(google::protobuf::Arena::CreateMessage<common::ChangeEvent>(&arena_));
  r.attempt = tiers_.attempt_of(*msg);
  if (const auto due_ms = tiers_.not_before_ms(*msg); due_ms > 0) {
    const auto wait_ms = due_ms - wall_ms();
    if (wait_ms > 0) {
      // A tier's records share one delay, so its head is the earliest due: wait on it without
      // sleeping the poll loop, by pausing the partition and rewinding to the head.
      hold({msg->topic_name(), msg->partition()}, msg->offset(), Clock::now() + std::chrono::milliseconds(wait_ms));
      return false;
    }
  }
  if (!r.event->ParseFromArray(msg->payload(), static_cast<int>(msg->len()))) {
    r.failure = Failure{common::ErrorClass::kPermanent, "decode", "payload is not a leadsync.v1.ChangeEvent", ""};
  }
  r.message = std::move(msg);
  consumed_counter(*r.message).Increment();
  batch_.push_back(std::move(r));
  return true;
}

void ConsumeLoop::hold(const TopicPartition& tp, int64_t offset, Clock::time_point until) {
  auto& consumer = consumer_of(tp.first);
  consumer.pause(tp.first, tp.second);
  consumer.seek(tp.first, tp.second, offset);
  held_[tp] = until;
  // Records after the head in this partition that are already in the batch stay; nothing after
  // the head is taken until it resumes, so the partition's processed records remain a prefix.
}

void ConsumeLoop::resume_due() {
  const auto now = Clock::now();
  for (auto it = held_.begin(); it != held_.end();) {
    if (it->second <= now) {
      consumer_of(it->first.first).resume(it->first.first, it->first.second);
      it = held_.erase(it);
    } else {
      ++it;
    }
  }
}

// The counter of the message's topic, looked up (labels built, hashed) only when the topic
// changes: a batch comes mostly from one topic.
prometheus::Counter& ConsumeLoop::consumed_counter(const RdKafka::Message& msg) {
  if (!consumed_ || topic_handle(msg) != consumed_topic_) {
    consumed_topic_ = topic_handle(msg);
    consumed_ = &metrics_.consumed(msg.topic_name());
  }
  return *consumed_;
}

void ConsumeLoop::finish_batch(const std::map<TopicPartition, int64_t>& rewind, std::chrono::milliseconds backoff) {
  // Per partition, the offset after its last record. A batch holds runs of one partition: the map
  // is touched (and the topic name copied) once per run, not per record.
  std::map<TopicPartition, int64_t> next;
  int64_t* run = nullptr;
  const RdKafka::Message* run_of = nullptr;
  for (const auto& r : batch_) {
    const auto& m = *r.message;
    if (!run_of || m.partition() != run_of->partition() || topic_handle(m) != topic_handle(*run_of)) {
      run = &next[r.partition()];
      run_of = &m;
    }
    *run = std::max(*run, r.offset() + 1);
  }
  for (const auto& [tp, offset] : rewind) {
    next[tp] = offset;
    hold(tp, offset, Clock::now() + backoff);
  }
  for (const auto& [tp, offset] : next) consumer_of(tp.first).store_offset(tp.first, tp.second, offset);
  batch_.clear();
  arena_.Reset();  // keeps the first block: the next batch decodes into the same memory
}

void ConsumeLoop::assigned(const common::KafkaConsumer::PartitionList& partitions) {
  metrics_.assigned.Increment(static_cast<double>(partitions.size()));
  if (on_assigned_) on_assigned_();
}

void ConsumeLoop::revoked(common::KafkaConsumer& consumer, const common::KafkaConsumer::PartitionList& partitions) {
  std::set<TopicPartition> gone;
  for (const auto* p : partitions) gone.insert({p->topic(), p->partition()});
  // Records of revoked partitions not yet applied are dropped: their offsets were not stored, so
  // the new owner reads them again.
  std::erase_if(batch_, [&](const Record& r) { return gone.count(r.partition()) > 0; });
  for (const auto& tp : gone) held_.erase(tp);
  metrics_.assigned.Decrement(static_cast<double>(partitions.size()));
  consumer.commit();
}

void ConsumeLoop::pause_all() {
  for (auto& c : consumers_) c->pause_all();
}

void ConsumeLoop::serve_paused(int timeout_ms) {
  for (auto& c : consumers_) {
    auto msg = c->consume(c == consumers_.front() ? timeout_ms : 0);
    if (msg && msg->err() == RdKafka::ERR_NO_ERROR) {
      // A partition assigned during the wait: hold it until the target is back.
      c->pause(msg->topic_name(), msg->partition());
      c->seek(msg->topic_name(), msg->partition(), msg->offset());
    }
  }
}

void ConsumeLoop::resume_all() {
  for (auto& c : consumers_) c->resume_all();
  for (const auto& [tp, until] : held_) consumer_of(tp.first).pause(tp.first, tp.second);  // tiers keep waiting
}

size_t ConsumeLoop::assignment_size() {
  size_t n = 0;
  for (auto& c : consumers_) n += c->assignment_size();
  return n;
}

void ConsumeLoop::sample_lag() {
  if (Clock::now() < next_lag_sample_) return;
  int64_t lag = 0;
  for (auto& c : consumers_) lag += c->lag();
  metrics_.lag.Set(static_cast<double>(lag));
  next_lag_sample_ = Clock::now() + std::chrono::seconds(5);
}

void ConsumeLoop::close() {
  for (auto& c : consumers_) {
    c->commit();
    c->close();
  }
}

}  // namespace leadsync::workers
