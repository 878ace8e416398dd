// The reverse direction's capture (issue 9, R11): applications' changes to the captured table reach
// the reverse topic once each, leadsync's own writes never do (echo suppression per transaction),
// and an outbox row is deleted only after Kafka acknowledged its event.
#include <gtest/gtest.h>

#include <set>

#include "common/kafka_admin.h"
#include "producers/pg_changes/outbox_capture.h"
#include "tests/integration/reverse_support.h"

namespace leadsync::testing {
namespace {

class ReverseCapture : public ::testing::Test {
 protected:
  ReverseCapture()
      : config_(reverse_test_config(unique_tag(::testing::UnitTest::GetInstance()->current_test_info()->name()),
                                    "http://127.0.0.1:9/rest/")),
        env_(config_),
        conn_(connect(config_)) {}

  void app_sql(const std::string& sql) {
    pqxx::work tx(*conn_);
    tx.exec(sql);
    tx.commit();
  }
  // Runs the capture until the outbox of the table is empty; returns the events published.
  std::size_t drain(producers::OutboxCapture& capture) {
    std::size_t total = 0;
    while (const auto n = capture.run_once()) total += n;
    return total;
  }
  std::vector<common::ChangeEvent> reverse_events() {
    std::vector<common::ChangeEvent> out;
    for (const auto& m : read_topic(common::reverse_kafka_config(config_), config_.reverse.topic)) {
      common::ChangeEvent e;
      EXPECT_TRUE(e.ParseFromString(m.value));
      EXPECT_EQ(m.key, e.entity() + "/" + e.key());
      out.push_back(e);
    }
    return out;
  }
  // Applies events through the real PostgreSQL worker, as leadsync does with the CRM's changes.
  void apply_through_worker(const std::vector<common::ChangeEvent>& events) {
    common::KafkaProducer producer(config_.kafka);
    for (const auto& e : events) produce_event(producer, config_.kafka, e);
    ASSERT_TRUE(producer.flush(std::chrono::seconds(10)));
    WorkerThread worker(config_);
    ASSERT_TRUE(eventually(
        [&] {
          pqxx::read_transaction tx(*conn_);
          return tx.exec1("SELECT count(*) FROM " + lead_table(config_))[0].as<std::size_t>() >= events.size();
        },
        std::chrono::seconds(60)));
  }

  common::Config config_;
  ReverseEnvironment env_;
  std::unique_ptr<pqxx::connection> conn_;
  common::Telemetry telemetry_;
};

TEST_F(ReverseCapture, R11_ApplicationEditsReachTheReverseTopicOnceEach) {
  app_sql("INSERT INTO " + lead_table(config_) +
          " (lead_id, email, first_name, score, lead_sources, created_at) SELECT 'L' || i, 'l' || i || '@x.test', "
          "'Ann', i, ARRAY['web', 'ads'], '2026-01-02 03:04:05.123456+00' FROM generate_series(1, 1000) i");
  app_sql("UPDATE " + lead_table(config_) + " SET first_name = 'Bea' WHERE lead_id IN ('L1', 'L2', 'L3')");
  app_sql("UPDATE " + lead_table(config_) + " SET first_name = first_name WHERE lead_id = 'L4'");  // no change
  EXPECT_EQ(outbox_rows(*conn_, config_), 1003);
  producers::OutboxCapture capture(config_, telemetry_.registry());
  EXPECT_EQ(drain(capture), 1003u);
  EXPECT_EQ(outbox_rows(*conn_, config_), 0);
  const auto events = reverse_events();
  ASSERT_EQ(events.size(), 1003u);
  std::map<std::string, std::vector<const common::ChangeEvent*>> by_key;
  for (const auto& e : events) by_key[e.key()].push_back(&e);
  EXPECT_EQ(by_key.size(), 1000u);
  const auto& l1 = by_key.at("L1");
  ASSERT_EQ(l1.size(), 2u);
  EXPECT_LT(l1[0]->source_version(), l1[1]->source_version());  // stamped from the clock, newer each edit
  EXPECT_EQ(l1[1]->fields().at("first_name").string_value(), "Bea");
  const auto& l5 = *by_key.at("L5").front();
  EXPECT_EQ(l5.origin(), "postgres");
  EXPECT_EQ(l5.source(), config_.reverse.source);
  EXPECT_EQ(l5.op(), v1::OP_UPSERT);
  EXPECT_EQ(l5.fields().at("score").int_value(), 5);
  EXPECT_EQ(l5.fields().at("lead_sources").string_list().values_size(), 2);
  EXPECT_EQ(l5.fields().at("created_at").timestamp_micros(), *common::parse_timestamp_micros("2026-01-02T03:04:05.123456Z"));
  EXPECT_TRUE(l5.fields().at("twenty_id").has_null_value());  // created here: no CRM id yet
  pqxx::read_transaction tx(*conn_);
  const auto row = tx.exec1("SELECT _origin, _source FROM " + lead_table(config_) + " WHERE lead_id = 'L5'");
  EXPECT_EQ(row[0].as<std::string>(), "postgres");
  EXPECT_EQ(row[1].as<std::string>(), config_.reverse.source);
}

TEST_F(ReverseCapture, R11_RowsLeadsyncWroteFromTheCrmDoNotTravelBackButLaterApplicationEditsDo) {
  std::vector<common::ChangeEvent> events;
  for (int i = 0; i < 200; ++i) {
    events.push_back(crm_event(config_, "tw-" + std::to_string(i), 1'700'000'000'000'000 + i,
                               {{"email", text("p" + std::to_string(i) + "@crm.test")}, {"first_name", text("Cy")}}));
  }
  apply_through_worker(events);
  EXPECT_EQ(outbox_rows(*conn_, config_), 0) << "leadsync's own writes entered the outbox";
  producers::OutboxCapture capture(config_, telemetry_.registry());
  EXPECT_EQ(drain(capture), 0u);

  app_sql("UPDATE " + lead_table(config_) + " SET status = 'won' WHERE lead_id IN ('tw-1', 'tw-2')");
  EXPECT_EQ(drain(capture), 2u);
  const auto out = reverse_events();
  ASSERT_EQ(out.size(), 2u);
  for (const auto& e : out) {
    EXPECT_EQ(e.fields().at("status").string_value(), "won");
    EXPECT_EQ(e.fields().at("twenty_id").string_value(), e.key()) << "a CRM record is found by its CRM id";
    EXPECT_GT(e.source_version(), 1'700'000'000'000'000) << "the application's edit is newer than the CRM's";
    EXPECT_EQ(e.origin(), "postgres");
  }
}

TEST_F(ReverseCapture, R11_EchoSuppressionIsPerTransactionNotPerRow) {
  app_sql("INSERT INTO " + lead_table(config_) + " (lead_id, email) VALUES ('A', 'a@x.test'), ('B', 'b@x.test')");
  producers::OutboxCapture capture(config_, telemetry_.registry());
  EXPECT_EQ(drain(capture), 2u);
  {
    // A transaction that says it is leadsync's: neither row is stamped or captured.
    pqxx::work tx(*conn_);
    tx.exec("SET LOCAL leadsync.origin = 'worker'");
    tx.exec("UPDATE " + lead_table(config_) + " SET first_name = 'L', _origin = 'twenty' WHERE lead_id IN ('A','B')");
    tx.commit();
  }
  // The same session's next transaction is an application's again (SET LOCAL ended with the commit).
  app_sql("UPDATE " + lead_table(config_) + " SET first_name = 'App' WHERE lead_id = 'A'");
  EXPECT_EQ(drain(capture), 1u);
  const auto events = reverse_events();
  ASSERT_EQ(events.size(), 3u);
  std::map<std::string, int> per_key;
  for (const auto& e : events) ++per_key[e.key()];
  EXPECT_EQ(per_key["A"], 2);
  EXPECT_EQ(per_key["B"], 1);
  const auto app = std::find_if(events.begin(), events.end(), [](const auto& e) {
    return e.fields().at("first_name").kind_case() == common::Value::kStringValue;
  });
  ASSERT_NE(app, events.end());
  EXPECT_EQ(app->key(), "A");
  EXPECT_EQ(app->fields().at("first_name").string_value(), "App");
  pqxx::read_transaction tx(*conn_);
  EXPECT_EQ(tx.exec1("SELECT _origin FROM " + lead_table(config_) + " WHERE lead_id = 'B'")[0].as<std::string>(), "twenty");
}

TEST_F(ReverseCapture, R11_DeletesAreCaptured) {
  app_sql("INSERT INTO " + lead_table(config_) + " (lead_id, email) VALUES ('A', 'a@x.test'), ('B', 'b@x.test')");
  app_sql("DELETE FROM " + lead_table(config_) + " WHERE lead_id = 'A'");
  app_sql("UPDATE " + lead_table(config_) + " SET _deleted = true WHERE lead_id = 'B'");
  producers::OutboxCapture capture(config_, telemetry_.registry());
  EXPECT_EQ(drain(capture), 4u);
  const auto events = reverse_events();
  std::map<std::string, int> deletes;
  for (const auto& e : events) deletes[e.key()] += e.op() == v1::OP_DELETE;
  EXPECT_EQ(deletes["A"], 1);
  EXPECT_EQ(deletes["B"], 1);
}

TEST_F(ReverseCapture, R13_OutboxRowsStayUntilKafkaAcknowledges) {
  app_sql("INSERT INTO " + lead_table(config_) + " (lead_id, email) VALUES ('A', 'a@x.test'), ('B', 'b@x.test')");
  {
    auto broken = config_;
    broken.kafka.brokers = "127.0.0.1:9";  // nothing listens there
    broken.kafka.properties["message.timeout.ms"] = "1500";
    producers::OutboxCapture capture(broken, telemetry_.registry());
    EXPECT_THROW(capture.run_once(), std::runtime_error);
  }
  EXPECT_EQ(outbox_rows(*conn_, config_), 2) << "changes Kafka never acknowledged were deleted";
  common::Telemetry telemetry;
  producers::OutboxCapture capture(config_, telemetry.registry());
  capture.sample_lag();
  EXPECT_GT(metric_value(telemetry, "leadsync_capture_lag_seconds"), 0.0);
  EXPECT_EQ(drain(capture), 2u);
  capture.sample_lag();
  EXPECT_EQ(metric_value(telemetry, "leadsync_capture_lag_seconds"), 0.0);
  EXPECT_EQ(metric_value(telemetry, "leadsync_events_captured_total", {{"result", "published"}}), 2.0);
  EXPECT_EQ(reverse_events().size(), 2u);
}

}  // namespace
}  // namespace leadsync::testing
