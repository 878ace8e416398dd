// R5, R13 — how the worker consumes and forwards (issue 7): a forward to a retry tier or the
// dead-letter topic that Kafka does not acknowledge never lets the source offset move, so the
// record is retried and never lost; a second worker takes its share of the main topic.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "common/kafka_handles.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::Value;

std::map<std::string, Value> lead_fields(const std::string& key, int64_t score) {
  return {
      {"first_name", text("Ada " + key)}, {"last_name", text("Lovelace")},
      {"email", text(key + "@example.com")}, {"phone", text("+44 20 7946 0000")},
      {"company", text("Analytical Engines")}, {"status", text("new")},
      {"assignee", text("ana")}, {"lead_sources", list({"web"})},
      {"score", integer(score)}, {"created_at", timestamp(1'767'225'600'000'000)},
      {"updated_at", null()}, {"notes", text("good")},
  };
}

common::ChangeEvent lead_event(const common::Config& config, const std::string& key, int64_t version,
                               const std::string& run_id) {
  return change_event(config.sources.at(0).name, "lead", key, leadsync::v1::OP_UPSERT, version,
                      lead_fields(key, version), run_id);
}

int64_t count_leads(pqxx::connection& conn, const common::Config& config) {
  pqxx::work tx(conn);
  return tx.exec1("SELECT count(*) FROM " + common::qualified(conn, config.postgres.schema, "leads"))[0].as<int64_t>();
}

// The offset the worker group has committed for one partition (-1 when none).
int64_t committed_offset(const common::Config& config, const std::string& topic, int32_t partition) {
  auto conf = common::make_conf(config.kafka, {{"group.id", config.kafka.group}, {"enable.auto.commit", "false"}}, {});
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer) throw std::runtime_error("consumer: " + err);
  std::unique_ptr<RdKafka::TopicPartition> tp(RdKafka::TopicPartition::create(topic, partition));
  std::vector<RdKafka::TopicPartition*> list{tp.get()};
  const auto rc = consumer->committed(list, 10'000);
  consumer->close();
  if (rc != RdKafka::ERR_NO_ERROR) throw std::runtime_error("committed offsets: " + RdKafka::err2str(rc));
  return tp->offset() < 0 ? -1 : tp->offset();
}

TEST(Forwarding, R5_ADeadLetterTheBrokerRejectsLeavesTheSourceOffsetUncommittedAndIsRetriedUntilItLands) {
  const auto tag = unique_tag("fwdreject");
  const auto config = isolated_example_config(tag, 1);
  // Failure injection: a dead-letter topic whose size limit no record batch fits (the batch header
  // alone is 61 bytes), created before the environment, which leaves existing topics as they are.
  common::create_topics(config.kafka, {{config.kafka.dlq_topic, 1, -1, {{"max.message.bytes", "64"}}}});
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag;
  const int64_t version = 1'000;

  common::KafkaProducer kafka(config.kafka);
  for (int i = 0; i < 5; ++i) produce_event(kafka, config.kafka, lead_event(config, "g" + std::to_string(i), version, run_id));
  const std::string poison = R"({"lead_id": "not a ChangeEvent"})";
  kafka.produce(config.kafka.topic, "lead/poison", poison);  // offset 5 of the only partition
  for (int i = 5; i < 10; ++i) produce_event(kafka, config.kafka, lead_event(config, "g" + std::to_string(i), version, run_id));
  ASSERT_TRUE(kafka.flush(30s));
  ASSERT_EQ(kafka.failed(), 0u) << kafka.first_error();

  WorkerThread worker(config);
  auto conn = connect(config);
  ASSERT_TRUE(eventually([&] { return count_leads(*conn, config) == 10; }, 60s)) << count_leads(*conn, config);
  ASSERT_TRUE(eventually(
      [&] { return metric_value(worker.telemetry(), "leadsync_forward_failures_total") >= 2; }, 30s))
      << "the rejected dead letter was not retried";
  // The dead letter was refused, so the poison record's offset (5) must not be committed: the
  // record is still in the source partition, waiting.
  EXPECT_LE(committed_offset(config, config.kafka.topic, 0), 5);
  EXPECT_EQ(sum(high_watermarks(config.kafka, config.kafka.dlq_topic)), 0);

  // The topic is fixed: the same record lands in the dead-letter topic, and only then does the
  // offset move past it.
  common::set_topic_configs(config.kafka, config.kafka.dlq_topic, {{"max.message.bytes", "1048588"}});
  ASSERT_TRUE(eventually([&] { return committed_offset(config, config.kafka.topic, 0) == 11; }, 60s))
      << "committed " << committed_offset(config, config.kafka.topic, 0);
  const auto dead = read_topic(config.kafka, config.kafka.dlq_topic);
  ASSERT_EQ(dead.size(), 1u);
  for (const auto& d : dead) {
    EXPECT_EQ(d.value, poison);
    EXPECT_EQ(d.header("leadsync-original-offset"), "5");
    EXPECT_EQ(d.header("leadsync-error-stage"), "decode");
  }
  EXPECT_EQ(count_leads(*conn, config), 10);
}

TEST(Forwarding, R13_ASecondWorkerTakesItsShareOfTheMainTopicNotOnlyRetryTiers) {
  const auto tag = unique_tag("balance");
  const auto config = isolated_example_config(tag, 3);
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag;
  WorkerThread first(config);
  ASSERT_TRUE(eventually([&] { return first.telemetry().ready(); }, 30s));
  WorkerThread second(config);
  ASSERT_TRUE(eventually([&] { return second.telemetry().ready(); }, 30s));
  std::this_thread::sleep_for(5s);  // a cooperative rebalance settles in two rounds

  common::KafkaProducer kafka(config.kafka);
  constexpr int kLeads = 600;  // spread by key over the main topic's 3 partitions
  for (int i = 0; i < kLeads; ++i) produce_event(kafka, config.kafka, lead_event(config, "b" + std::to_string(i), 5, run_id));
  ASSERT_TRUE(kafka.flush(30s));
  auto conn = connect(config);
  ASSERT_TRUE(eventually([&] { return count_leads(*conn, config) == kLeads; }, 60s)) << count_leads(*conn, config);
  const auto by_first = metric_value(first.telemetry(), "leadsync_events_consumed_total", {{"topic", config.kafka.topic}});
  const auto by_second = metric_value(second.telemetry(), "leadsync_events_consumed_total", {{"topic", config.kafka.topic}});
  EXPECT_GT(by_first, 0) << "the first worker read nothing from the main topic";
  EXPECT_GT(by_second, 0) << "the second worker read nothing from the main topic";
  EXPECT_EQ(by_first + by_second, kLeads);
}

}  // namespace
}  // namespace leadsync::testing
