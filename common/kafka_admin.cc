#include "common/kafka_admin.h"

#include <stdexcept>

#include "common/kafka_handles.h"

namespace leadsync::common {
namespace {

struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* p) const { rd_kafka_NewTopic_destroy(p); }
};
struct ConfigResourceDeleter {
  void operator()(rd_kafka_ConfigResource_t* p) const { rd_kafka_ConfigResource_destroy(p); }
};
struct DeleteTopicDeleter {
  void operator()(rd_kafka_DeleteTopic_t* p) const { rd_kafka_DeleteTopic_destroy(p); }
};

}  // namespace

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
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  AdminOptionsPtr options(rd_kafka_AdminOptions_new(rk.get(), RD_KAFKA_ADMIN_OP_CREATETOPICS));
  rd_kafka_AdminOptions_set_operation_timeout(options.get(), static_cast<int>(timeout.count()), err, sizeof err);
  rd_kafka_CreateTopics(rk.get(), raw.data(), raw.size(), options.get(), queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count()) + 5000));
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
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  rd_kafka_DeleteTopics(rk.get(), raw.data(), raw.size(), nullptr, queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count())));
  if (!event) throw std::runtime_error("deleting topics: no answer in time");
}

void set_topic_configs(const KafkaConfig& config, const std::string& topic,
                       const std::map<std::string, std::string>& configs, std::chrono::milliseconds timeout) {
  auto rk = make_admin_handle(config);
  std::unique_ptr<rd_kafka_ConfigResource_t, ConfigResourceDeleter> resource(
      rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str()));
  for (const auto& [k, v] : configs) {
    if (rd_kafka_ConfigResource_set_config(resource.get(), k.c_str(), v.c_str()) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("topic " + topic + ": bad config " + k);
    }
  }
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto* raw = resource.get();
  rd_kafka_AlterConfigs(rk.get(), &raw, 1, nullptr, queue.get());
  EventPtr event(rd_kafka_queue_poll(queue.get(), static_cast<int>(timeout.count())));
  if (!event) throw std::runtime_error("configuring topic " + topic + ": no answer in time");
  if (rd_kafka_event_error(event.get())) {
    throw std::runtime_error("configuring topic " + topic + ": " + rd_kafka_event_error_string(event.get()));
  }
  size_t n = 0;
  const auto** results = rd_kafka_AlterConfigs_result_resources(rd_kafka_event_AlterConfigs_result(event.get()), &n);
  for (size_t i = 0; i < n; ++i) {
    if (rd_kafka_ConfigResource_error(results[i]) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("configuring topic " + topic + ": " + rd_kafka_ConfigResource_error_string(results[i]));
    }
  }
}

}  // namespace leadsync::common
