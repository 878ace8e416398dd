// R5, R13 — the PostgreSQL target when a batch fails as a whole (issue 7 items 8 and 9): an error
// outside the per-record savepoints fails only the record that causes it instead of ending the
// worker; a statement that fails for the deployment (schema) backs off with jitter, reports it
// (readiness, metric) and recovers once fixed; a batch too big for the server is split.
#include <gtest/gtest.h>

#include <string>
#include <thread>

#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::Value;

common::ChangeEvent lead_event(const common::Config& config, const std::string& key, int64_t version,
                               const std::string& run_id) {
  const std::map<std::string, Value> fields{
      {"first_name", text("Ada " + key)}, {"last_name", text("Lovelace")},
      {"email", text(key + "@example.com")}, {"phone", text("+44 20 7946 0000")},
      {"company", text("Analytical Engines")}, {"status", text("new")},
      {"assignee", text("ana")}, {"lead_sources", list({"web"})},
      {"score", integer(version)}, {"created_at", timestamp(1'767'225'600'000'000)},
      {"updated_at", null()}, {"notes", text("good")},
  };
  return change_event(config.sources.at(0).name, "lead", key, leadsync::v1::OP_UPSERT, version, fields, run_id);
}

void exec(const common::Config& config, const std::string& sql) {
  auto conn = connect(config);
  pqxx::work tx(*conn);
  tx.exec(sql);
  tx.commit();
}

int64_t query_int(const common::Config& config, const std::string& sql) {
  auto conn = connect(config);
  pqxx::work tx(*conn);
  return tx.exec1(sql)[0].as<int64_t>();
}

std::string leads_table(const common::Config& config) {
  auto conn = connect(config);
  return common::qualified(*conn, config.postgres.schema, "leads");
}

int64_t count_leads(const common::Config& config) { return query_int(config, "SELECT count(*) FROM " + leads_table(config)); }

// Runs `sql` now and `undo` when the scope ends, so that a failing test leaves no trigger behind.
class Installed {
 public:
  Installed(const common::Config& config, const std::string& sql, std::string undo) : config_(config), undo_(std::move(undo)) {
    exec(config_, sql);
  }
  ~Installed() {
    try {
      exec(config_, undo_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cleanup failed: " << e.what();
    }
  }

 private:
  const common::Config& config_;
  std::string undo_;
};

TEST(Target, R5_AnErrorOutsideTheSavepointsFailsOnlyTheRecordThatCausesItInsteadOfEndingTheWorker) {
  const auto tag = unique_tag("outside");
  const auto config = isolated_example_config(tag, 1);
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag, poison_run = "poison-" + tag;
  // The run statistics are written after the savepoints, in the batch's transaction: a row the
  // database refuses there names no record.
  const auto fn = config.postgres.schema + ".refuse_stats";
  Installed trigger(config,
                    "CREATE FUNCTION " + fn + "() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                    "RAISE EXCEPTION 'run statistics refused for %', NEW.run_id; END $$; "
                    "CREATE TRIGGER refuse_" + tag + " BEFORE INSERT ON leadsync.run_apply_stats FOR EACH ROW "
                    "WHEN (NEW.run_id = '" + poison_run + "') EXECUTE FUNCTION " + fn + "()",
                    "DROP TRIGGER IF EXISTS refuse_" + tag + " ON leadsync.run_apply_stats");

  common::KafkaProducer kafka(config.kafka);
  for (int i = 0; i < 20; ++i) produce_event(kafka, config.kafka, lead_event(config, "g" + std::to_string(i), 7, run_id));
  produce_event(kafka, config.kafka, lead_event(config, "poisoned", 7, poison_run));
  for (int i = 20; i < 40; ++i) produce_event(kafka, config.kafka, lead_event(config, "g" + std::to_string(i), 7, run_id));
  ASSERT_TRUE(kafka.flush(30s));

  WorkerThread worker(config);
  ASSERT_TRUE(eventually([&] { return count_leads(config) == 40 && sum(high_watermarks(config.kafka, config.kafka.dlq_topic)) >= 1; }, 60s))
      << count_leads(config) << " leads";
  const auto dead = read_topic(config.kafka, config.kafka.dlq_topic);
  ASSERT_EQ(dead.size(), 1u);
  EXPECT_EQ(dead[0].key, "lead/poisoned");
  EXPECT_EQ(dead[0].header("leadsync-error-stage"), "database");
  EXPECT_NE(dead[0].header("leadsync-error").find("run statistics refused"), std::string::npos) << dead[0].header("leadsync-error");
  EXPECT_EQ(query_int(config, "SELECT count(*) FROM " + leads_table(config) + " WHERE lead_id = 'poisoned'"), 0);
}

TEST(Target, R13_AStatementThatDoesNotFitTheSchemaBacksOffWithJitterIsReportedAndRecoversOnceFixed) {
  const auto tag = unique_tag("misfit");
  const auto config = isolated_example_config(tag, 1);
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag;
  common::KafkaProducer kafka(config.kafka);
  WorkerThread worker(config);
  produce_event(kafka, config.kafka, lead_event(config, "before", 1, run_id));
  ASSERT_TRUE(kafka.flush(30s));
  ASSERT_TRUE(eventually([&] { return count_leads(config) == 1 && worker.telemetry().ready(); }, 30s));

  // A deployment problem: the table lost a column the statement writes (42703 on every batch).
  exec(config, "ALTER TABLE " + leads_table(config) + " RENAME COLUMN notes TO notes_moved");
  produce_event(kafka, config.kafka, lead_event(config, "during", 2, run_id));
  ASSERT_TRUE(kafka.flush(30s));
  const auto rollbacks = [&] {
    return query_int(config, "SELECT xact_rollback FROM pg_stat_database WHERE datname = current_database()");
  };
  std::this_thread::sleep_for(2s);
  const auto r0 = rollbacks();
  std::this_thread::sleep_for(8s);
  const auto attempts = rollbacks() - r0;
  // Backing off from 250 ms, doubling to 5 s, tries about 4 times in 8 s; without a backoff the
  // worker tried about ten times a second.
  EXPECT_GE(attempts, 1);
  EXPECT_LE(attempts, 12) << "the failing batch was retried " << attempts << " times in 8 s";
  EXPECT_FALSE(worker.telemetry().ready());
  EXPECT_EQ(metric_value(worker.telemetry(), "leadsync_worker_backoff_active"), 1);
  EXPECT_GE(metric_value(worker.telemetry(), "leadsync_target_unavailable_total", {{"reason", "misfit"}}), 2);
  EXPECT_EQ(metric_value(worker.telemetry(), "leadsync_target_unavailable_total", {{"reason", "outage"}}), 0);
  EXPECT_EQ(count_leads(config), 1);

  exec(config, "ALTER TABLE " + leads_table(config) + " RENAME COLUMN notes_moved TO notes");
  ASSERT_TRUE(eventually([&] { return count_leads(config) == 2 && worker.telemetry().ready(); }, 30s));
  EXPECT_EQ(metric_value(worker.telemetry(), "leadsync_worker_backoff_active"), 0);
  EXPECT_EQ(sum(high_watermarks(config.kafka, config.kafka.dlq_topic)), 0);
}

TEST(Target, R13_ABatchThatFailsForItsSizeIsSplitUntilThePiecesFit) {
  const auto tag = unique_tag("size");
  const auto config = isolated_example_config(tag, 1);
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag;
  const auto table = leads_table(config);
  // The server refuses (out of memory, 53200) any statement that inserts more than 50 rows.
  exec(config, "CREATE FUNCTION " + config.postgres.schema + ".at_most_50() RETURNS trigger LANGUAGE plpgsql AS $$ "
               "BEGIN IF (SELECT count(*) FROM inserted) > 50 THEN "
               "RAISE EXCEPTION 'statement too big' USING ERRCODE = '53200'; END IF; RETURN NULL; END $$; "
               "CREATE TRIGGER at_most_50 AFTER INSERT ON " + table +
               " REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION " + config.postgres.schema +
               ".at_most_50()");
  common::KafkaProducer kafka(config.kafka);
  for (int i = 0; i < 300; ++i) produce_event(kafka, config.kafka, lead_event(config, "s" + std::to_string(i), 3, run_id));
  ASSERT_TRUE(kafka.flush(30s));

  WorkerThread worker(config);
  ASSERT_TRUE(eventually([&] { return count_leads(config) == 300; }, 60s)) << count_leads(config) << " of 300 leads";
  EXPECT_EQ(sum(high_watermarks(config.kafka, config.kafka.dlq_topic)), 0);
}

}  // namespace
}  // namespace leadsync::testing
