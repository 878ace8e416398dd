// PostgreSQL -> Twenty end to end (issue 9 "Done when", R11): the real broker and PostgreSQL, the
// capture and the CRM sink (the real Worker with the Twenty target), the fake Twenty server. Writes
// are counted at the fake.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "tests/fakes/twenty/fake_twenty.h"
#include "tests/integration/reverse_support.h"

namespace leadsync::testing {
namespace {

using fakes::twenty::FakeTwenty;
using fakes::twenty::Object;
using fakes::twenty::WriteOrigin;
using nlohmann::json;

std::string test_name() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

class ReverseSink : public ::testing::Test {
 protected:
  explicit ReverseSink(const std::map<std::string, common::FieldPriority>& priority = {})
      : config_(configured(priority)), env_(config_), conn_(connect(config_)) {}

  common::Config configured(const std::map<std::string, common::FieldPriority>& priority) {
    fake_.store().add_field(Object::kPeople, "status", nullptr);
    fake_.store().add_field(Object::kPeople, "score", nullptr);
    ::setenv("TWENTY_API_KEY", fake_.api_key().c_str(), 1);
    return reverse_test_config(unique_tag(test_name()), fake_.base_url(), priority);
  }

  void app_sql(const std::string& sql) {
    pqxx::work tx(*conn_);
    tx.exec(sql);
    tx.commit();
  }
  // The CRM's people as its inbound adapter would publish them, applied by the real worker.
  void sync_in_from_crm(const std::vector<std::string>& ids) {
    common::KafkaProducer producer(config_.kafka);
    for (const auto& id : ids) produce_event(producer, config_.kafka, event_of(*fake_.store().get(Object::kPeople, id)));
    ASSERT_TRUE(producer.flush(std::chrono::seconds(10)));
  }
  common::ChangeEvent event_of(const json& p) {
    std::map<std::string, common::Value> fields{{"first_name", text(p["name"]["firstName"])},
                                                {"last_name", text(p["name"]["lastName"])},
                                                {"email", text(p["emails"]["primaryEmail"])}};
    fields["status"] = p["status"].is_string() ? text(p["status"]) : null();
    fields["score"] = p["score"].is_number() ? integer(p["score"]) : null();
    const auto ms = fakes::twenty::parse_iso_ms(p["updatedAt"].get<std::string>());
    return crm_event(config_, p["id"], *ms * 1000, fields);
  }
  int64_t count(const std::string& sql) {
    pqxx::read_transaction tx(*conn_);
    return tx.exec1(sql)[0].as<int64_t>();
  }
  std::string pg_text(const std::string& key, const std::string& column) {
    pqxx::read_transaction tx(*conn_);
    const auto r = tx.exec_params1("SELECT " + column + "::text FROM " + lead_table(config_) + " WHERE lead_id = $1", key);
    return r[0].is_null() ? "NULL" : r[0].as<std::string>();
  }

  FakeTwenty fake_;
  common::Config config_;
  ReverseEnvironment env_;
  std::unique_ptr<pqxx::connection> conn_;
};

TEST_F(ReverseSink, R11_ApplicationEditsReachTheCrmExactlyOnceEachAndLeadsyncsOwnWritesNever) {
  const auto ids = fake_.store().seed_people(1000);
  WorkerThread inbound(config_);
  ReversePipeline pipeline(config_);
  sync_in_from_crm(ids);
  ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM " + lead_table(config_)) == 1000; },
                         std::chrono::seconds(60)));
  // Leadsync wrote 1,000 rows from the CRM: nothing may travel back.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(outbox_rows(*conn_, config_), 0);
  EXPECT_EQ(fake_.store().total_api_writes(), 0) << "leadsync's own writes travelled back to the CRM";

  // An application edits every one of them.
  app_sql("UPDATE " + lead_table(config_) + " SET first_name = 'Edited ' || lead_id");
  ASSERT_TRUE(eventually([&] { return fake_.store().total_api_writes() >= 1000; }, std::chrono::seconds(120)))
      << fake_.store().total_api_writes() << " writes";
  std::this_thread::sleep_for(std::chrono::seconds(2));  // nothing more may arrive
  EXPECT_EQ(fake_.store().total_api_writes(), 1000);
  EXPECT_EQ(fake_.store().api_creates(), 0);
  const auto writes = fake_.store().api_writes_by_id();
  for (const auto& id : ids) {
    ASSERT_EQ(writes.count(id) ? writes.at(id) : 0, 1) << id;
  }
  const auto p = *fake_.store().get(Object::kPeople, ids[7]);
  EXPECT_EQ(p["name"]["firstName"], "Edited " + ids[7]);
  EXPECT_EQ(p["name"]["lastName"], "Last7") << "a composite field's other part is untouched";
  EXPECT_EQ(outbox_rows(*conn_, config_), 0);
}

TEST_F(ReverseSink, R11_ACreateFromPostgresGetsItsCrmIdBackAndAReplayedCreateMakesNoDuplicate) {
  ReversePipeline pipeline(config_);
  app_sql("INSERT INTO " + lead_table(config_) +
          " (lead_id, email, first_name, last_name) SELECT 'L' || i, 'l' || i || '@x.test', 'F' || i, 'N' || i "
          "FROM generate_series(1, 130) i");
  ASSERT_TRUE(eventually(
      [&] { return count("SELECT count(*) FROM " + lead_table(config_) + " WHERE twenty_id IS NOT NULL") == 130; },
      std::chrono::seconds(60)));
  EXPECT_EQ(fake_.store().size(Object::kPeople), 130u);
  EXPECT_EQ(fake_.store().api_creates(), 130);
  EXPECT_LE(fake_.batch_requests(), 6) << "creates go in batches of at most 60";
  const auto id = pg_text("L42", "twenty_id");
  const auto person = fake_.store().get(Object::kPeople, id);
  ASSERT_TRUE(person) << "the id written back names the CRM's record";
  EXPECT_EQ((*person)["emails"]["primaryEmail"], "l42@x.test");
  EXPECT_EQ((*person)["name"]["firstName"], "F42");
  EXPECT_EQ(outbox_rows(*conn_, config_), 0) << "the write-back of the id travelled back";

  // Every create again, as after a crash between the CRM's answer and the write-back.
  const auto kafka = common::reverse_kafka_config(config_);
  const auto captured = read_topic(kafka, config_.reverse.topic);
  ASSERT_EQ(captured.size(), 130u);
  {
    common::KafkaProducer producer(kafka);
    for (const auto& m : captured) producer.produce(config_.reverse.topic, m.key, m.value);
    ASSERT_TRUE(producer.flush(std::chrono::seconds(10)));
  }
  ASSERT_TRUE(eventually(
      [&] { return metric_value(pipeline.sink_telemetry(), "leadsync_events_consumed_total") >= 260; },
      std::chrono::seconds(60)));
  std::this_thread::sleep_for(std::chrono::seconds(1));
  EXPECT_EQ(fake_.store().size(Object::kPeople), 130u) << "a replayed create duplicated a person";
  EXPECT_EQ(fake_.store().api_creates(), 130);
  EXPECT_EQ(fake_.store().total_api_writes(), 130) << "the replay changed nothing, so nothing was written";
  EXPECT_EQ(pg_text("L42", "twenty_id"), id);
}

// The same person edited in Twenty and in PostgreSQL within one second, for each priority of
// `status` and both orders of the two edits: the documented winner on both sides, and the decision in
// leadsync.conflict_decisions.
struct ConflictCase {
  common::FieldPriority priority;
  bool postgres_edits_last;
  const char* expected;  // the value both sides end with
};

class ReverseConflict : public ReverseSink, public ::testing::WithParamInterface<ConflictCase> {
 protected:
  ReverseConflict() : ReverseSink({{"status", GetParam().priority}}) {}
};

TEST_P(ReverseConflict, R11_TheDocumentedWinnerOnBothSidesAndTheDecisionAudited) {
  const auto c = GetParam();
  const auto id = fake_.store().seed_people(1).front();
  {
    WorkerThread inbound(config_);
    sync_in_from_crm({id});
    ASSERT_TRUE(eventually([&] { return count("SELECT count(*) FROM " + lead_table(config_)) == 1; },
                           std::chrono::seconds(30)));
  }
  auto crm_edit = [&] {
    ASSERT_TRUE(std::holds_alternative<json>(
        fake_.store().update(Object::kPeople, id, {{"status", "crm-value"}}, WriteOrigin::kTest)));
  };
  auto pg_edit = [&] { app_sql("UPDATE " + lead_table(config_) + " SET status = 'pg-value' WHERE lead_id = '" + id + "'"); };
  if (c.postgres_edits_last) {
    crm_edit();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    pg_edit();
  } else {
    pg_edit();
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    crm_edit();
  }
  // Both directions run: the CRM's change comes in (as its webhook or poll would publish it), the
  // application's goes out.
  WorkerThread inbound(config_);
  ReversePipeline pipeline(config_);
  sync_in_from_crm({id});
  ASSERT_TRUE(eventually(
      [&] {
        return pg_text(id, "status") == c.expected &&
               (*fake_.store().get(Object::kPeople, id))["status"] == c.expected &&
               count("SELECT count(*) FROM leadsync.conflict_decisions WHERE key = '" + id + "'") > 0;
      },
      std::chrono::seconds(30)))
      << "postgres: " << pg_text(id, "status") << ", crm: " << (*fake_.store().get(Object::kPeople, id))["status"];
  std::this_thread::sleep_for(std::chrono::seconds(2));  // and it stays so
  EXPECT_EQ(pg_text(id, "status"), c.expected);
  EXPECT_EQ((*fake_.store().get(Object::kPeople, id))["status"], c.expected);
  pqxx::read_transaction tx(*conn_);
  const auto decisions = tx.exec_params(
      "SELECT direction, postgres_value, crm_value, winner, rule FROM leadsync.conflict_decisions WHERE key = $1 AND "
      "field = 'status'",
      id);
  ASSERT_GT(decisions.size(), 0u);
  const std::string winner = std::string(c.expected) == "pg-value" ? "postgres" : "crm";
  const std::string rule = c.priority == common::FieldPriority::kLastWriteWins ? "last_write_wins" : "priority";
  for (const auto& d : decisions) {
    EXPECT_EQ(d[3].as<std::string>(), winner) << d[0].as<std::string>();
    EXPECT_EQ(d[4].as<std::string>(), rule);
    EXPECT_NE(d[1].as<std::string>().find("pg-value"), std::string::npos) << "the audit keeps both values";
    EXPECT_NE(d[2].as<std::string>().find("crm-value"), std::string::npos);
  }
  EXPECT_LE(fake_.store().total_api_writes(), 1) << "at most the one write the decision asks for";
}

INSTANTIATE_TEST_SUITE_P(
    Priorities, ReverseConflict,
    ::testing::Values(ConflictCase{common::FieldPriority::kLastWriteWins, true, "pg-value"},
                      ConflictCase{common::FieldPriority::kLastWriteWins, false, "crm-value"},
                      ConflictCase{common::FieldPriority::kCrm, true, "crm-value"},
                      ConflictCase{common::FieldPriority::kCrm, false, "crm-value"},
                      ConflictCase{common::FieldPriority::kPostgres, true, "pg-value"},
                      ConflictCase{common::FieldPriority::kPostgres, false, "pg-value"}),
    [](const auto& info) {
      return std::string(common::field_priority_name(info.param.priority)) +
             (info.param.postgres_edits_last ? "_PostgresEditsLast" : "_CrmEditsLast");
    });

}  // namespace
}  // namespace leadsync::testing
