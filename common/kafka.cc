#include "common/kafka.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <stdexcept>
#include <thread>

#include "common/errors.h"

namespace leadsync::common {
namespace {

using ConfPtr = std::unique_ptr<RdKafka::Conf>;

void set(RdKafka::Conf& conf, const std::string& key, const std::string& value) {
  std::string err;
  if (conf.set(key, value, err) != RdKafka::Conf::CONF_OK) {
    throw ConfigError("kafka property '" + key + "': " + err);
  }
}

ConfPtr make_conf(const KafkaConfig& config, const std::map<std::string, std::string>& defaults,
                  const std::map<std::string, std::string>& overrides) {
  ConfPtr conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  set(*conf, "bootstrap.servers", config.brokers);
  for (const auto& [k, v] : defaults) set(*conf, k, v);
  for (const auto& [k, v] : config.properties) set(*conf, k, v);
  for (const auto& [k, v] : overrides) set(*conf, k, v);
  return conf;
}

// C admin handles, each owned from the line it is created.
struct RdKafkaDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
};
struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
};
struct DeleteTopicDeleter {
  void operator()(rd_kafka_DeleteTopic_t* p) const { rd_kafka_DeleteTopic_destroy(p); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
};

std::unique_ptr<rd_kafka_t, RdKafkaDeleter> make_admin_handle(const KafkaConfig& config) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set_c = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw ConfigError("kafka property '" + k + "': " + err);
    }
  };
  set_c("bootstrap.servers", config.brokers);
  for (const auto& [k, v] : config.properties) set_c(k, v);
  // rd_kafka_new takes ownership of conf only on success.
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("kafka admin client: ") + err);
  }
  return std::unique_ptr<rd_kafka_t, RdKafkaDeleter>(rk);
}

}  // namespace

std::string header_value(const RdKafka::Message& msg, const std::string& name) {
  // headers() is not const in librdkafka's C++ API, though it only reads.
  const RdKafka::Headers* headers = const_cast<RdKafka::Message&>(msg).headers();
  if (!headers) return {};
  const auto h = headers->get_last(name);
  if (h.err() != RdKafka::ERR_NO_ERROR || !h.value()) return {};
  return std::string(static_cast<const char*>(h.value()), h.value_size());
}

// ---------------------------------------------------------------- producer

void KafkaProducer::Report::dr_cb(RdKafka::Message& message) {
  if (message.err() == RdKafka::ERR_NO_ERROR) {
    delivered.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  failed.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex);
  if (first_error.empty()) {
    first_error = "delivery to " + message.topic_name() + " failed: " + message.errstr();
  }
}

KafkaProducer::KafkaProducer(const KafkaConfig& config, const std::map<std::string, std::string>& overrides) {
  auto conf = make_conf(config,
                        {
                            // Exactly-once per partition and ordered retries: no duplicates or
                            // reordering introduced by the producer itself.
                            {"enable.idempotence", "true"},
                            {"acks", "all"},
                            {"linger.ms", "5"},
                            {"batch.size", "1000000"},
                            {"compression.type", "lz4"},
                            {"queue.buffering.max.messages", "200000"},
                            {"queue.buffering.max.kbytes", "262144"},
                            {"message.timeout.ms", "120000"},
                        },
                        overrides);
  std::string err;
  if (conf->set("dr_cb", &report_, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
  handle_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!handle_) throw std::runtime_error("kafka producer: " + err);
}

KafkaProducer::~KafkaProducer() {
  if (handle_) handle_->flush(10'000);
}

std::string KafkaProducer::first_error() const {
  std::lock_guard lock(report_.mutex);
  return report_.first_error;
}

void KafkaProducer::produce(const std::string& topic, std::string_view key, std::string_view value,
                            const Headers& headers, int32_t partition) {
  for (;;) {
    RdKafka::Headers* h = nullptr;
    if (!headers.empty()) {
      h = RdKafka::Headers::create();
      for (const auto& [k, v] : headers) h->add(k, v.data(), v.size());
    }
    const auto rc = handle_->produce(topic, partition, RdKafka::Producer::RK_MSG_COPY,
                                     const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, h,
                                     nullptr);
    if (rc == RdKafka::ERR_NO_ERROR) {
      handle_->poll(0);
      return;
    }
    delete h;  // ownership passes to librdkafka only on success
    if (rc != RdKafka::ERR__QUEUE_FULL) {
      throw std::runtime_error("kafka produce to " + topic + ": " + RdKafka::err2str(rc));
    }
    handle_->poll(50);  // let deliveries drain the queue, then try again
  }
}

void KafkaProducer::warm_up(const std::string& topic, std::chrono::milliseconds timeout) {
  std::string err;
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(handle_.get(), topic, nullptr, err));
  if (!t) return;  // produce() reports the problem with its context
  RdKafka::Metadata* raw = nullptr;
  if (handle_->metadata(false, t.get(), &raw, static_cast<int>(timeout.count())) == RdKafka::ERR_NO_ERROR) {
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
  }
}

bool KafkaProducer::flush(std::chrono::milliseconds timeout) {
  return handle_->flush(static_cast<int>(timeout.count())) == RdKafka::ERR_NO_ERROR;
}

// ---------------------------------------------------------------- consumer

void KafkaConsumer::Rebalance::rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err,
                                            PartitionList& partitions) {
  const bool cooperative = consumer->rebalance_protocol() == "COOPERATIVE";
  if (err == RdKafka::ERR__ASSIGN_PARTITIONS) {
    if (on_assign) on_assign(partitions);
    std::unique_ptr<RdKafka::Error> e(cooperative ? consumer->incremental_assign(partitions) : nullptr);
    if (!cooperative) consumer->assign(partitions);
    if (e) spdlog::error("kafka: incremental assign failed: {}", e->str());
    spdlog::info("kafka: assigned {} partition(s)", partitions.size());
  } else {
    if (on_revoke) on_revoke(partitions);
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
                            {"queued.max.messages.kbytes", "65536"},
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
  handle_->close();
}

// ---------------------------------------------------------------- reader

TopicReader::TopicReader(const KafkaConfig& config, const std::string& topic, std::chrono::milliseconds timeout)
    : topic_(topic), timeout_(timeout) {
  auto conf = make_conf(config,
                        {{"group.id", "leadsync-reader"},  // required by the API; never joined or committed
                         {"enable.auto.commit", "false"},
                         {"enable.partition.eof", "false"}},
                        {});
  std::string err;
  handle_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!handle_) throw std::runtime_error("kafka reader: " + err);
  RdKafka::Metadata* raw = nullptr;
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(handle_.get(), topic, nullptr, err));
  const auto rc = handle_->metadata(false, t.get(), &raw, static_cast<int>(timeout.count()));
  std::unique_ptr<RdKafka::Metadata> metadata(raw);
  if (rc != RdKafka::ERR_NO_ERROR) throw std::runtime_error("metadata of " + topic + ": " + RdKafka::err2str(rc));
  for (const auto* tm : *metadata->topics()) {
    if (tm->topic() != topic) continue;
    if (tm->err() != RdKafka::ERR_NO_ERROR) throw std::runtime_error("topic " + topic + ": " + RdKafka::err2str(tm->err()));
    partitions_ = static_cast<int>(tm->partitions()->size());
  }
  if (partitions_ == 0) throw std::runtime_error("topic " + topic + " does not exist");
}

TopicReader::~TopicReader() {
  if (handle_) handle_->close();
}

std::vector<int64_t> TopicReader::high_watermarks() {
  std::vector<int64_t> out(static_cast<std::size_t>(partitions_));
  for (int p = 0; p < partitions_; ++p) {
    int64_t low = 0, high = 0;
    const auto rc = handle_->query_watermark_offsets(topic_, p, &low, &high, static_cast<int>(timeout_.count()));
    if (rc != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("watermarks of " + topic_ + "[" + std::to_string(p) + "]: " + RdKafka::err2str(rc));
    }
    out[static_cast<std::size_t>(p)] = high;
  }
  return out;
}

void TopicReader::read(const std::vector<int64_t>& from, const std::function<bool(const RdKafka::Message&)>& visit) {
  const auto end = high_watermarks();
  for (int p = 0; p < partitions_; ++p) {
    const auto start = p < static_cast<int>(from.size()) ? from[static_cast<std::size_t>(p)] : 0;
    const auto stop = end[static_cast<std::size_t>(p)];
    if (start >= stop) continue;
    std::unique_ptr<RdKafka::TopicPartition> tp(RdKafka::TopicPartition::create(topic_, p, start));
    std::vector<RdKafka::TopicPartition*> list{tp.get()};
    handle_->assign(list);
    int64_t next = start;
    auto deadline = std::chrono::steady_clock::now() + timeout_;
    while (next < stop) {
      std::unique_ptr<RdKafka::Message> msg(handle_->consume(100));
      if (msg->err() == RdKafka::ERR_NO_ERROR) {
        next = msg->offset() + 1;
        deadline = std::chrono::steady_clock::now() + timeout_;
        if (!visit(*msg)) {
          handle_->unassign();
          return;
        }
      } else if (msg->err() != RdKafka::ERR__TIMED_OUT) {
        throw std::runtime_error("reading " + topic_ + "[" + std::to_string(p) + "]: " + msg->errstr());
      } else if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("reading " + topic_ + "[" + std::to_string(p) + "]: no message at offset " +
                                 std::to_string(next) + " in time");
      }
    }
    handle_->unassign();
  }
}

// ---------------------------------------------------------------- admin

std::vector<TopicSpec> leadsync_topics(const KafkaConfig& config) {
  std::vector<TopicSpec> topics;
  topics.push_back({config.topic, config.partitions, -1, {}});
  for (int tier = 1; tier <= config.retry.attempts; ++tier) {
    topics.push_back({config.retry_topic(tier), config.partitions, -1, {}});
  }
  topics.push_back({config.dlq_topic, config.partitions, -1, {{"retention.ms", "2592000000"}}});  // 30 days
  return topics;
}

std::vector<std::string> create_topics(const KafkaConfig& config, const std::vector<TopicSpec>& topics,
                                       std::chrono::milliseconds timeout) {
  auto rk = make_admin_handle(config);
  std::vector<std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>> owned;
  std::vector<rd_kafka_NewTopic_t*> raw;
  char err[512];
  for (const auto& t : topics) {
    owned.emplace_back(rd_kafka_NewTopic_new(t.name.c_str(), t.partitions, t.replication_factor, err, sizeof err));
    if (!owned.back()) throw std::runtime_error("topic " + t.name + ": " + err);
    for (const auto& [k, v] : t.configs) {
      if (rd_kafka_NewTopic_set_config(owned.back().get(), k.c_str(), v.c_str())) {
        throw std::runtime_error("topic " + t.name + ": bad config " + k);
      }
    }
    raw.push_back(owned.back().get());
  }
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk.get()));
  std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter> options(
      rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), static_cast<int>(timeout.count()), err, sizeof err);
  rd_kafka_CreateTopics(rk.get(), raw.data(), raw.size(), options.get(), queue.get());
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(
      rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 5000));
  if (!event) throw std::runtime_error("creating topics: no answer from " + config.brokers + " in time");
  if (rd_kafka_event_error(event.get())) {
    throw std::runtime_error(std::string("creating topics: ") + rd_kafka_event_error_string(event.get()));
  }
  const auto* result = rd_kafka_event_CreateTopics_result(event.get());
  size_t n = 0;
  const auto** results = rd_kafka_CreateTopics_result_topics(result, &n);
  std::vector<std::string> report;
  for (size_t i = 0; i < n; ++i) {
    const std::string name = rd_kafka_topic_result_name(results[i]);
    const auto code = rd_kafka_topic_result_error(results[i]);
    if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
      report.push_back("created " + name);
    } else if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
      report.push_back("exists  " + name);
    } else {
      throw std::runtime_error("creating topic " + name + ": " + rd_kafka_topic_result_error_string(results[i]));
    }
  }
  return report;
}

void delete_topics(const KafkaConfig& config, const std::vector<std::string>& topics,
                   std::chrono::milliseconds timeout) {
  auto rk = make_admin_handle(config);
  std::vector<std::unique_ptr<rd_kafka_DeleteTopic_t, DeleteTopicDeleter>> owned;
  std::vector<rd_kafka_DeleteTopic_t*> raw;
  for (const auto& t : topics) {
    owned.emplace_back(rd_kafka_DeleteTopic_new(t.c_str()));
    raw.push_back(owned.back().get());
  }
  std::unique_ptr<rd_kafka_queue_t, QueueDeleter> queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_DeleteTopics(rk.get(), raw.data(), raw.size(), nullptr, queue.get());
  std::unique_ptr<rd_kafka_event_t, EventDeleter> event(
      rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count())));
  if (!event) throw std::runtime_error("deleting topics: no answer in time");
}

}  // namespace leadsync::common
