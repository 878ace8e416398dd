// Both directions of the Twenty link at once, with the real inbound adapter (issue 9, R11/R12):
// `kind: twenty` polling the fake Twenty into PostgreSQL while leadsync-capture and the CRM sink take
// applications' changes to it. A person created from PostgreSQL comes back by poll (or webhook)
// keyed by its Twenty id and must land on the row it came from, not on a second row.
#include <gtest/gtest.h>

#include <cstdlib>

#include "common/kafka_producer.h"
#include "ctl/repair.h"
#include "producers/sync_run.h"
#include "tests/fakes/twenty/fake_twenty.h"
#include "tests/integration/reverse_support.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using fakes::twenty::FakeTwenty;
using fakes::twenty::Object;
using fakes::twenty::WriteOrigin;
using nlohmann::json;

std::string test_name() { return ::testing::UnitTest::GetInstance()->current_test_info()->name(); }

class ReverseRoundTrip : public ::testing::Test {
 protected:
  explicit ReverseRoundTrip(const std::string& priority_yaml = "{}")
      : config_(configured(priority_yaml)), env_(config_), conn_(connect(config_)), producer_(config_.kafka) {}

  common::Config configured(const std::string& priority_yaml) {
    fake_.store().add_field(Object::kPeople, "status", nullptr);
    fake_.store().add_field(Object::kPeople, "score", nullptr);
    ::setenv("TWENTY_API_KEY", fake_.api_key().c_str(), 1);
    return roundtrip_config(unique_tag(test_name()), fake_.base_url(), priority_yaml);
  }

  // One run of the real inbound adapter (kind: twenty), incremental after the first.
  void poll() {
    producers::SyncRunner runner(config_, producer_, nullptr);
    const auto report = runner.run(config_.sources.at(0));
    ASSERT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
  }
  void app_sql(const std::string& sql) {
    pqxx::work tx(*conn_);
    tx.exec(sql);
    tx.commit();
  }
  int64_t count(const std::string& sql) {
    pqxx::read_transaction tx(*conn_);
    return tx.exec1(sql)[0].as<int64_t>();
  }
  int64_t rows() { return count("SELECT count(*) FROM " + lead_table(config_)); }
  std::string pg_text(const std::string& key, const std::string& column) {
    pqxx::read_transaction tx(*conn_);
    const auto r = tx.exec_params("SELECT " + column + "::text FROM " + lead_table(config_) + " WHERE lead_id = $1", key);
    if (r.empty()) return "<no row>";
    return r[0][0].is_null() ? "NULL" : r[0][0].as<std::string>();
  }
  std::string crm_first_name(const std::string& id) {
    const auto p = fake_.store().get(Object::kPeople, id);
    return p ? (*p)["name"]["firstName"].get<std::string>() : "<no person>";
  }

  FakeTwenty fake_;
  common::Config config_;
  ReverseEnvironment env_;
  std::unique_ptr<pqxx::connection> conn_;
  common::KafkaProducer producer_;
};

TEST_F(ReverseRoundTrip, R11_APersonCreatedFromPostgresIsRecognisedByItsWrittenBackIdWhenPolledIn) {
  WorkerThread inbound(config_);
  ReversePipeline pipeline(config_);
  app_sql("INSERT INTO " + lead_table(config_) +
          " (lead_id, first_name, last_name, email, status, score) VALUES ('L1', 'Ann', 'Lee', 'ann@x.test', 'new', 10)");
  ASSERT_TRUE(eventually([&] { return pg_text("L1", "twenty_id") != "NULL"; }, 30s)) << "no id written back";
  const auto id = pg_text("L1", "twenty_id");
  ASSERT_EQ(crm_first_name(id), "Ann");
  ASSERT_EQ(fake_.store().api_creates(), 1);

  // The sink linked the id to L1 before it created the person (the next test needs that); here the
  // link is gone, as for an id written back before links were stored: the id in twenty_id suffices.
  ASSERT_EQ(count("SELECT count(*) FROM leadsync.identities WHERE entity = 'lead' AND value = '" + id + "'"), 2);
  app_sql("DELETE FROM leadsync.identities WHERE entity = 'lead' AND value = '" + id + "'");

  // The next poll sees the new person, keyed by its Twenty id: it is L1's record.
  poll();
  ASSERT_TRUE(eventually([&] { return pg_text("L1", "_source") == config_.sources[0].name; }, 30s))
      << "the polled person never reached L1 (_source " << pg_text("L1", "_source") << ")";
  EXPECT_EQ(rows(), 1) << "the polled person became a second row";
  EXPECT_EQ(pg_text(id, "lead_id"), "<no row>");

  // Twenty's later edit reaches that same row, and nothing travels back.
  ASSERT_TRUE(std::holds_alternative<json>(fake_.store().update(
      Object::kPeople, id, {{"name", {{"firstName", "Anne"}}}, {"score", 42}}, WriteOrigin::kTest)));
  poll();
  ASSERT_TRUE(eventually([&] { return pg_text("L1", "first_name") == "Anne"; }, 30s)) << pg_text("L1", "first_name");
  EXPECT_EQ(pg_text("L1", "score"), "42");
  EXPECT_EQ(pg_text("L1", "twenty_id"), id) << "the full image kept the write-back field";
  EXPECT_EQ(rows(), 1);
  std::this_thread::sleep_for(2s);  // nothing more may arrive at the fake
  EXPECT_EQ(fake_.store().total_api_writes(), 1) << "only the create: leadsync's own writes never travel back";
  EXPECT_EQ(outbox_rows(*conn_, config_), 0);
  EXPECT_EQ(count("SELECT count(*) FROM leadsync.identities WHERE entity = 'lead' AND field = '_key' AND value = '" + id +
                  "' AND key = 'L1'"),
            1);

  // And an application's edit of the row goes to the same person.
  app_sql("UPDATE " + lead_table(config_) + " SET last_name = 'Leigh' WHERE lead_id = 'L1'");
  ASSERT_TRUE(eventually(
      [&] { return (*fake_.store().get(Object::kPeople, id))["name"]["lastName"] == "Leigh"; }, 30s));
  EXPECT_EQ(fake_.store().size(Object::kPeople), 1u);
}

// The CRM's copy of a new person can come back (a webhook fires on the create) before the sink has
// written its id into PostgreSQL. Here the write-back is held up by a row lock while the poll runs.
TEST_F(ReverseRoundTrip, R11_APersonPolledInBeforeItsIdIsWrittenBackStillLandsOnItsRow) {
  app_sql("INSERT INTO " + lead_table(config_) +
          " (lead_id, first_name, last_name, email, status, score) VALUES ('L2', 'Bo', 'Ng', 'bo@x.test', 'new', 5)");
  auto locker = connect(config_);
  auto lock = std::make_unique<pqxx::work>(*locker);
  lock->exec("SELECT 1 FROM " + lead_table(config_) + " WHERE lead_id = 'L2' FOR UPDATE");
  WorkerThread inbound(config_);
  ReversePipeline pipeline(config_);
  ASSERT_TRUE(eventually([&] { return fake_.store().size(Object::kPeople) == 1; }, 30s)) << "no create in the CRM";
  EXPECT_EQ(pg_text("L2", "twenty_id"), "NULL") << "the write-back was not held up";
  poll();
  std::this_thread::sleep_for(3s);  // the worker has had the person's event
  EXPECT_EQ(rows(), 1) << "the person polled in before the write-back became a second row";
  lock->abort();
  lock.reset();
  ASSERT_TRUE(eventually([&] { return pg_text("L2", "_source") == config_.sources[0].name; }, 60s))
      << "the polled person never reached L2";
  const auto id = pg_text("L2", "twenty_id");
  EXPECT_NE(id, "NULL");
  EXPECT_EQ(rows(), 1);
  EXPECT_EQ(fake_.store().size(Object::kPeople), 1u);
  EXPECT_EQ(fake_.store().api_creates(), 1);
}

// leadsyncctl repair re-publishes the CRM's own image of drifted records (the worker applies it in
// its leadsync transaction), and rollback puts the rows back as they were before the repair, in a
// leadsync transaction too (SET LOCAL leadsync.origin = 'rollback'): neither travels to the CRM.
// The rollback undoes a repair that never touched the CRM, so the CRM keeps its values; an
// application that wants the restored values there edits them (docs/operating.md).
TEST_F(ReverseRoundTrip, R11_ARepairAndItsRollbackMakeNoWriteToTheCrm) {
  const auto ids = fake_.store().seed_people(3);
  WorkerThread inbound(config_);
  ReversePipeline pipeline(config_);
  poll();
  ASSERT_TRUE(eventually([&] { return rows() == 3; }, 30s));
  const auto key = ids[1];
  const auto crm_value = crm_first_name(key);
  // Drift that no application made (a restore from a backup, a hand fix in a leadsync session).
  {
    pqxx::work tx(*conn_);
    tx.exec("SET LOCAL leadsync.origin = 'test-drift'");
    tx.exec_params("UPDATE " + lead_table(config_) + " SET first_name = 'Drifted' WHERE lead_id = $1", key);
    tx.commit();
  }
  const auto origin_before = pg_text(key, "_origin");
  const auto version_before = pg_text(key, "_version");
  ctl::RepairOptions options;
  const auto repaired = ctl::repair_source(config_, config_.sources.at(0), options);
  ASSERT_EQ(repaired.keys, std::vector<std::string>{key});
  ASSERT_TRUE(eventually([&] { return pg_text(key, "first_name") == crm_value; }, 30s)) << pg_text(key, "first_name");

  const auto rolled_back = ctl::rollback_backup(config_, repaired.backup_id);
  ASSERT_EQ(rolled_back.rows.size(), 1u);
  EXPECT_EQ(pg_text(key, "first_name"), "Drifted");
  EXPECT_EQ(pg_text(key, "_origin"), origin_before) << "the rollback's row was stamped as an application edit";
  EXPECT_GT(std::stoll(pg_text(key, "_version")), std::stoll(version_before));
  EXPECT_EQ(outbox_rows(*conn_, config_), 0) << "the rollback was captured for the CRM";
  std::this_thread::sleep_for(3s);  // the capture polls every 50 ms, the sink takes what comes
  EXPECT_EQ(fake_.store().total_api_writes(), 0) << "a repair or rollback travelled to the CRM";
  EXPECT_EQ(crm_first_name(key), crm_value);
  EXPECT_EQ(metric_value(pipeline.sink_telemetry(), "leadsync_events_consumed_total"), 0);
}

class ReverseRoundTripPostgresOwnsScore : public ReverseRoundTrip {
 protected:
  ReverseRoundTripPostgresOwnsScore() : ReverseRoundTrip("{score: postgres}") {}
};

// `score: postgres` through the real adapter, whose events carry the source's name as origin: a
// user's edit of score in Twenty is refused in PostgreSQL (audited) and PostgreSQL's value is written
// back into Twenty, while the same edit's other field (last-write-wins, Twenty newer) is taken.
TEST_F(ReverseRoundTripPostgresOwnsScore, R11_ACrmEditOfAFieldPostgresOwnsIsRefusedAndPutBackInTheCrm) {
  const auto id = fake_.store().seed_people(1).front();
  WorkerThread inbound(config_);
  ReversePipeline pipeline(config_);
  poll();
  ASSERT_TRUE(eventually([&] { return rows() == 1; }, 30s));
  app_sql("UPDATE " + lead_table(config_) + " SET score = 7 WHERE lead_id = '" + id + "'");
  ASSERT_TRUE(eventually([&] { return (*fake_.store().get(Object::kPeople, id))["score"] == 7; }, 30s));
  ASSERT_EQ(fake_.store().total_api_writes(), 1);

  ASSERT_TRUE(std::holds_alternative<json>(fake_.store().update(
      Object::kPeople, id, {{"name", {{"firstName", "Zed"}}}, {"score", 99}}, WriteOrigin::kTest)));
  poll();
  ASSERT_TRUE(eventually(
      [&] {
        return pg_text(id, "first_name") == "Zed" && (*fake_.store().get(Object::kPeople, id))["score"] == 7;
      },
      30s))
      << "postgres first_name " << pg_text(id, "first_name") << ", crm score "
      << (*fake_.store().get(Object::kPeople, id))["score"];
  EXPECT_EQ(pg_text(id, "score"), "7") << "the CRM's value of a field PostgreSQL owns was applied";
  EXPECT_EQ(count("SELECT count(*) FROM leadsync.conflict_decisions WHERE key = '" + id +
                  "' AND field = 'score' AND direction = 'to_postgres' AND winner = 'postgres' AND rule = 'priority' AND "
                  "crm_value = '99' AND postgres_value = '7'"),
            1);
  // And it stays so: the next poll brings the CRM's corrected record, which changes nothing.
  poll();
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(fake_.store().total_api_writes(), 2) << "the score edit, then putting PostgreSQL's score back";
  EXPECT_EQ((*fake_.store().get(Object::kPeople, id))["name"]["firstName"], "Zed");
  EXPECT_EQ(pg_text(id, "score"), "7");
  EXPECT_EQ(outbox_rows(*conn_, config_), 0);
}

// A rollback restores the backed-up row as it was, also a field PostgreSQL owns on a row whose last
// change came from the CRM (the triggers would otherwise keep the current value, as for a CRM change).
TEST_F(ReverseRoundTripPostgresOwnsScore, R11_ARollbackRestoresAFieldPostgresOwnsAsBackedUp) {
  const auto id = fake_.store().seed_people(1).front();
  WorkerThread inbound(config_);
  ReversePipeline pipeline(config_);
  poll();
  ASSERT_TRUE(eventually([&] { return rows() == 1; }, 30s));
  {
    pqxx::work tx(*conn_);
    tx.exec("SET LOCAL leadsync.origin = 'test-drift'");
    tx.exec_params("UPDATE " + lead_table(config_) + " SET first_name = 'Drifted' WHERE lead_id = $1", id);
    tx.commit();
  }
  const auto repaired = ctl::repair_source(config_, config_.sources.at(0), {});
  ASSERT_EQ(repaired.keys, std::vector<std::string>{id});
  ASSERT_TRUE(eventually([&] { return pg_text(id, "first_name") == "First0"; }, 30s));
  ASSERT_EQ(pg_text(id, "_origin"), config_.sources[0].name);
  // After the repair, an application sets the score; the rollback puts the row back as backed up.
  app_sql("UPDATE " + lead_table(config_) + " SET score = 5 WHERE lead_id = '" + id + "'");
  ASSERT_TRUE(eventually([&] { return (*fake_.store().get(Object::kPeople, id))["score"] == 5; }, 30s));
  ctl::rollback_backup(config_, repaired.backup_id);
  EXPECT_EQ(pg_text(id, "first_name"), "Drifted");
  EXPECT_EQ(pg_text(id, "score"), "NULL") << "the rollback kept the current value of a field PostgreSQL owns";
  EXPECT_EQ(pg_text(id, "_origin"), config_.sources[0].name);
  EXPECT_EQ(outbox_rows(*conn_, config_), 0);
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(fake_.store().total_api_writes(), 1) << "only the application's score edit reached the CRM";
}

}  // namespace
}  // namespace leadsync::testing
