#include "ctl/exporter.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/kafka_handles.h"
#include "common/metric_names.h"
#include "common/redact.h"
#include "common/pg.h"
#include "ctl/field_metrics.h"

namespace leadsync::ctl {
namespace {

constexpr int kTimeoutMs = 10'000;

struct GroupListDeleter {
  void operator()(const rd_kafka_group_list* p) const { rd_kafka_group_list_destroy(p); }
};

struct Sample {
  int64_t lag = 0;
  int64_t committed = 0;
  int members = 0;
};

// Reads the group's committed offsets without joining it: a consumer handle with the group's id
// that never subscribes only asks the coordinator (OffsetFetch), so the workers see no rebalance.
class GroupReader {
 public:
  explicit GroupReader(const common::KafkaConfig& config) : config_(config) {
    auto conf = common::make_conf(config, {{"group.id", config.group}, {"enable.auto.commit", "false"}}, {});
    std::string err;
    handle_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!handle_) throw std::runtime_error("kafka consumer: " + err);
  }
  ~GroupReader() {
    if (handle_) handle_->close();
  }

  Sample sample() {
    Sample s;
    const auto& topic = config_.topic;
    RdKafka::Metadata* raw = nullptr;
    std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(handle_.get(), topic, nullptr, err_));
    if (handle_->metadata(false, t.get(), &raw, kTimeoutMs) != RdKafka::ERR_NO_ERROR || !raw) {
      throw std::runtime_error("no metadata for topic " + topic);
    }
    std::unique_ptr<RdKafka::Metadata> md(raw);
    if (md->topics()->empty() || md->topics()->at(0)->err() != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("topic " + topic + " not found");
    }
    std::vector<RdKafka::TopicPartition*> parts;
    for (const auto* p : *md->topics()->at(0)->partitions()) parts.push_back(RdKafka::TopicPartition::create(topic, p->id()));
    struct Free {
      std::vector<RdKafka::TopicPartition*>& v;
      ~Free() { RdKafka::TopicPartition::destroy(v); }
    } free_parts{parts};
    if (handle_->committed(parts, kTimeoutMs) != RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("cannot fetch the committed offsets of group " + config_.group);
    }
    for (auto* tp : parts) {
      int64_t low = 0, high = 0;
      if (handle_->query_watermark_offsets(topic, tp->partition(), &low, &high, kTimeoutMs) != RdKafka::ERR_NO_ERROR) {
        throw std::runtime_error("cannot read the watermarks of " + topic);
      }
      // Nothing committed yet (-1001): everything still in the partition is behind.
      const int64_t position = tp->offset() >= 0 ? std::max(tp->offset(), low) : low;
      s.lag += std::max<int64_t>(0, high - position);
      s.committed += position;
    }
    const rd_kafka_group_list* groups = nullptr;
    if (rd_kafka_list_groups(handle_->c_ptr(), config_.group.c_str(), &groups, kTimeoutMs) != RD_KAFKA_RESP_ERR_NO_ERROR) {
      throw std::runtime_error("cannot describe group " + config_.group);
    }
    std::unique_ptr<const rd_kafka_group_list, GroupListDeleter> owned(groups);
    for (int i = 0; i < groups->group_cnt; ++i) s.members += groups->groups[i].member_cnt;
    return s;
  }

 private:
  const common::KafkaConfig& config_;
  std::string err_;
  std::unique_ptr<RdKafka::KafkaConsumer> handle_;
};

}  // namespace

ExporterMetrics::ExporterMetrics(prometheus::Registry& registry)
    : lag(prometheus::BuildGauge()
              .Name(metric::kGroupLagMessages)
              .Help("Messages of the topic after the consumer group's committed offsets, summed over partitions")
              .Register(registry)),
      committed(prometheus::BuildGauge()
                    .Name(metric::kGroupCommittedMessages)
                    .Help("The consumer group's committed offsets summed over the topic's partitions: rises "
                          "while the workers make progress")
                    .Register(registry)),
      members(prometheus::BuildGauge()
                  .Name(metric::kGroupMembers)
                  .Help("Members of the consumer group as its coordinator reports them")
                  .Register(registry)
                  .Add({})),
      errors(prometheus::BuildCounter()
                 .Name(metric::kExporterErrors)
                 .Help("Samples of the consumer group that failed (broker unreachable, topic missing)")
                 .Register(registry)
                 .Add({})) {}

int run_exporter(const common::Config& config, common::Telemetry& telemetry, std::chrono::milliseconds interval,
                 const std::atomic<bool>& stop) {
  ExporterMetrics metrics(telemetry.registry());
  GroupReader reader(config.kafka);
  telemetry.set_stall_after(std::max<std::chrono::milliseconds>(interval * 4, std::chrono::seconds(60)));
  // Field-level counters from the database (ctl/field_metrics.h); a failure there counts an error
  // of its own and does not make the group's figures unready.
  FieldMetrics field_metrics(telemetry.registry());
  FieldCounter field_counter(config, field_metrics);
  std::unique_ptr<pqxx::connection> pg;
  while (!stop.load()) {
    telemetry.heartbeat();
    try {
      const auto s = reader.sample();
      metrics.lag.Add({{"topic", config.kafka.topic}}).Set(static_cast<double>(s.lag));
      metrics.committed.Add({{"topic", config.kafka.topic}}).Set(static_cast<double>(s.committed));
      metrics.members.Set(s.members);
      telemetry.set_ready(true);
    } catch (const std::exception& e) {
      metrics.errors.Increment();
      telemetry.set_ready(false);
      spdlog::warn("exporter: {}", common::redact(e.what()));
    }
    try {
      if (!pg || !pg->is_open()) pg = common::pg_connect(config.postgres, "leadsyncctl-exporter");
      field_counter.sample(*pg);
    } catch (const std::exception& e) {
      field_metrics.errors.Increment();
      pg.reset();
      spdlog::warn("exporter: field counters: {}", common::redact(e.what()));
    }
    for (auto waited = std::chrono::milliseconds(0); waited < interval && !stop.load();
         waited += std::chrono::milliseconds(100)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return 0;
}

}  // namespace leadsync::ctl
