#include "common/group_lag.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <stdexcept>

#include "common/kafka_handles.h"

namespace leadsync::common {
namespace {

struct GroupListDeleter {
  void operator()(const rd_kafka_group_list* p) const { rd_kafka_group_list_destroy(p); }
};

}  // namespace

GroupLagReader::GroupLagReader(const KafkaConfig& config, std::string group, std::vector<std::string> topics,
                               std::chrono::milliseconds timeout)
    : group_(std::move(group)), topics_(std::move(topics)), timeout_ms_(static_cast<int>(timeout.count())) {
  auto conf = make_conf(config, {{"group.id", group_}, {"enable.auto.commit", "false"}}, {});
  std::string err;
  handle_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!handle_) throw std::runtime_error("kafka consumer: " + err);
}

GroupLagReader::~GroupLagReader() {
  if (handle_) handle_->close();
}

GroupLag GroupLagReader::sample() {
  GroupLag g;
  std::vector<RdKafka::TopicPartition*> parts;
  struct Free {
    std::vector<RdKafka::TopicPartition*>& v;
    ~Free() { RdKafka::TopicPartition::destroy(v); }
  } free_parts{parts};
  for (const auto& topic : topics_) {
    std::string err;
    RdKafka::Metadata* raw = nullptr;
    std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(handle_.get(), topic, nullptr, err));
    if (handle_->metadata(false, t.get(), &raw, timeout_ms_) != RdKafka::ERR_NO_ERROR || !raw) {
      throw std::runtime_error("no metadata for topic " + topic);
    }
    std::unique_ptr<RdKafka::Metadata> md(raw);
    if (md->topics()->empty() || md->topics()->at(0)->err() != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("topic " + topic + " not found");
    }
    g.topics.push_back({topic, 0, 0, {}});
    for (const auto* p : *md->topics()->at(0)->partitions()) parts.push_back(RdKafka::TopicPartition::create(topic, p->id()));
  }
  if (!parts.empty() && handle_->committed(parts, timeout_ms_) != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error("cannot fetch the committed offsets of group " + group_);
  }
  for (auto* tp : parts) {
    auto& topic = *std::find_if(g.topics.begin(), g.topics.end(), [&](const TopicLag& t) { return t.topic == tp->topic(); });
    PartitionLag p;
    p.partition = tp->partition();
    p.committed = tp->offset() >= 0 ? tp->offset() : -1;
    if (handle_->query_watermark_offsets(tp->topic(), tp->partition(), &p.low, &p.high, timeout_ms_) !=
        RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("cannot read the watermarks of " + tp->topic());
    }
    // Nothing committed yet (-1001): everything still in the partition is behind.
    const int64_t position = p.committed >= 0 ? std::max(p.committed, p.low) : p.low;
    p.lag = std::max<int64_t>(0, p.high - position);
    topic.lag += p.lag;
    topic.committed += position;
    topic.partitions.push_back(p);
  }
  for (const auto& t : g.topics) {
    g.lag += t.lag;
    g.committed += t.committed;
  }
  const rd_kafka_group_list* groups = nullptr;
  if (rd_kafka_list_groups(handle_->c_ptr(), group_.c_str(), &groups, timeout_ms_) != RD_KAFKA_RESP_ERR_NO_ERROR) {
    throw std::runtime_error("cannot describe group " + group_);
  }
  std::unique_ptr<const rd_kafka_group_list, GroupListDeleter> owned(groups);
  for (int i = 0; i < groups->group_cnt; ++i) g.members += groups->groups[i].member_cnt;
  return g;
}

std::vector<std::string> worker_topics(const KafkaConfig& config) {
  std::vector<std::string> topics{config.topic};
  for (int tier = 1; tier <= config.retry.attempts; ++tier) topics.push_back(config.retry_topic(tier));
  return topics;
}

}  // namespace leadsync::common
