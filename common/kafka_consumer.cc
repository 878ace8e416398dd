#include "common/kafka_consumer.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <stdexcept>

#include "common/kafka_handles.h"

namespace leadsync::common {

std::string header_value(const RdKafka::Message& msg, const std::string& name) {
  // headers() is not const in librdkafka's C++ API, though it only reads.
  const RdKafka::Headers* headers = const_cast<RdKafka::Message&>(msg).headers();
  if (!headers) return {};
  const auto h = headers->get_last(name);
  if (h.err() != RdKafka::ERR_NO_ERROR || !h.value()) return {};
  return std::string(static_cast<const char*>(h.value()), h.value_size());
}

void KafkaConsumer::Rebalance::rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                                            PartitionList& partitions) {
  const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
  if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
    assigned_once = true;
    if (on_assign) on_assign(partitions);
    std::unique_ptr<RdKafka::Error> e(cooperative ? consumer->incremental_assign(partitions) : nullptr);
    if (!cooperative) consumer->assign(partitions);
    if (e) spdlog::error("kafka: incremental assign failed: {}", e->str());
    // A partition arrives unpaused, whatever its state when this consumer last owned it.
    consumer->resume(partitions);
    spdlog::info("kafka: assigned {} partition(s)", partitions.size());
  } else {
    if (on_revoke) on_revoke(partitions);
    // librdkafka keeps the application's pause on a partition after it is revoked: one held for a
    // retry backoff and later assigned back would never be read again. Release it on the way out.
    consumer->resume(partitions);
    std::unique_ptr<RdKafka::Error> e(cooperative ? consumer->incremental_unassign(partitions) : nullptr);
    if (!cooperative) consumer->unassign();
    if (e) spdlog::error("kafka: incremental unassign failed: {}", e->str());
    spdlog::info("kafka: revoked {} partition(s)", partitions.size());
  }
}

KafkaConsumer::KafkaConsumer(const KafkaConfig& config, const std::string& group,
                             const std::map<std::string, std::string>& overrides) {
  auto conf = make_conf(config,
                        {
                            {"group.id", group},
                            {"partition.assignment.strategy", "cooperative-sticky"},
                            // Offsets are stored by the worker after its database commit, and
                            // the stored offsets are committed in the background and on revoke.
                            {"enable.auto.offset.store", "false"},
                            {"enable.auto.commit", "true"},
                            {"auto.commit.interval.ms", "1000"},
                            {"auto.offset.reset", "earliest"},
                            {"enable.partition.eof", "false"},
                            {"session.timeout.ms", "10000"},
                            {"heartbeat.interval.ms", "1000"},
                            {"fetch.wait.max.ms", "10"},
                            // The prefetched queue bounds most of the worker's memory: librdkafka holds
                            // up to this much (plus up to one fetch per partition) beyond the batch in
                            // hand. 16 MiB is several full batches ahead of the apply (bench/README.md,
                            // issue 12 — the worker's memory).
                            {"queued.max.messages.kbytes", "16384"},
                        },
                        overrides);
  std::string err;
  if (conf->set("rebalance_cb", &rebalance_, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
  handle_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!handle_) throw std::runtime_error("kafka consumer: " + err);
}

KafkaConsumer::~KafkaConsumer() { close(); }

void KafkaConsumer::set_hooks(AssignHook on_assign, RevokeHook on_revoke) {
  rebalance_.on_assign = std::move(on_assign);
  rebalance_.on_revoke = std::move(on_revoke);
}

void KafkaConsumer::subscribe(const std::vector<std::string>& topics) {
  const auto rc = handle_->subscribe(topics);
  if (rc != RdKafka::ERR_NO_ERROR) throw std::runtime_error("kafka subscribe: " + RdKafka::err2str(rc));
  subscribed_ = true;
}

std::unique_ptr<RdKafka::Message> KafkaConsumer::consume(int timeout_ms) {
  return std::unique_ptr<RdKafka::Message>(handle_->consume(timeout_ms));
}

void KafkaConsumer::store_offset(const std::string& topic, int32_t partition, int64_t next_offset) {
  std::unique_ptr<RdKafka::TopicPartition> tp(RdKafka::TopicPartition::create(topic, partition, next_offset));
  PartitionList list{tp.get()};
  const auto rc = handle_->offsets_store(list);
  // A partition revoked meanwhile cannot store; its new owner replays, which the version guard absorbs.
  if (rc != RdKafka::ERR_NO_ERROR && rc != RdKafka::ERR__STATE) {
    spdlog::warn("kafka: storing offset {}[{}]@{} failed: {}", topic, partition, next_offset, RdKafka::err2str(rc));
  }
}

void KafkaConsumer::commit() {
  const auto rc = handle_->commitSync();
  if (rc != RdKafka::ERR_NO_ERROR && rc != RdKafka::ERR__NO_OFFSET) {
    spdlog::warn("kafka: commit failed: {}", RdKafka::err2str(rc));
  }
}

namespace {
void with_partition(RdKafka::KafkaConsumer& c, const std::string& topic, int32_t partition, bool pause) {
  std::unique_ptr<RdKafka::TopicPartition> tp(RdKafka::TopicPartition::create(topic, partition));
  KafkaConsumer::PartitionList list{tp.get()};
  const auto rc = pause ? c.pause(list) : c.resume(list);
  if (rc != RdKafka::ERR_NO_ERROR) {
    spdlog::warn("kafka: {} {}[{}] failed: {}", pause ? "pause" : "resume", topic, partition, RdKafka::err2str(rc));
  }
}
void with_assignment(RdKafka::KafkaConsumer& c, bool pause) {
  KafkaConsumer::PartitionList list;
  if (c.assignment(list) != RdKafka::ERR_NO_ERROR) return;
  if (pause) {
    c.pause(list);
  } else {
    c.resume(list);
  }
  RdKafka::TopicPartition::destroy(list);
}
}  // namespace

void KafkaConsumer::pause(const std::string& topic, int32_t partition) { with_partition(*handle_, topic, partition, true); }
void KafkaConsumer::resume(const std::string& topic, int32_t partition) {
  with_partition(*handle_, topic, partition, false);
}
void KafkaConsumer::pause_all() { with_assignment(*handle_, true); }
void KafkaConsumer::resume_all() { with_assignment(*handle_, false); }

void KafkaConsumer::seek(const std::string& topic, int32_t partition, int64_t offset) {
  std::unique_ptr<RdKafka::TopicPartition> tp(RdKafka::TopicPartition::create(topic, partition, offset));
  const auto rc = handle_->seek(*tp, 5000);
  if (rc != RdKafka::ERR_NO_ERROR) {
    spdlog::warn("kafka: seek {}[{}]@{} failed: {}", topic, partition, offset, RdKafka::err2str(rc));
  }
}

size_t KafkaConsumer::assignment_size() {
  PartitionList list;
  if (handle_->assignment(list) != RdKafka::ERR_NO_ERROR) return 0;
  const auto n = list.size();
  RdKafka::TopicPartition::destroy(list);
  return n;
}

int64_t KafkaConsumer::lag() {
  PartitionList list;
  if (handle_->assignment(list) != RdKafka::ERR_NO_ERROR) return 0;
  int64_t total = 0;
  if (handle_->position(list) == RdKafka::ERR_NO_ERROR) {
    for (const auto* tp : list) {
      int64_t low = 0, high = 0;
      if (tp->offset() < 0) continue;  // nothing consumed yet: unknown, not zero
      if (handle_->get_watermark_offsets(tp->topic(), tp->partition(), &low, &high) == RdKafka::ERR_NO_ERROR &&
          high > tp->offset()) {
        total += high - tp->offset();
      }
    }
  }
  RdKafka::TopicPartition::destroy(list);
  return total;
}

void KafkaConsumer::close() {
  if (closed_ || !handle_) return;
  closed_ = true;
#if RD_KAFKA_VERSION < 0x020300ff
  // librdkafka before 2.3 aborts (assertion `assignor_state`, its issue 4312) when a
  // cooperative-sticky member is closed before its first assignment, as a worker stopped right
  // after it started can be. Wait for that assignment, bounded; messages served meanwhile are
  // not stored, so the partitions' owners read them.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (subscribed_ && !rebalance_.assigned_once && std::chrono::steady_clock::now() < until) {
    std::unique_ptr<RdKafka::Message> ignored(handle_->consume(100));
  }
#endif
  handle_->close();
}

}  // namespace leadsync::common
