// R6 — migration 14 turns the audit table (one row per changed field) into leadsync.record_changes
// (one row per changed record) and the view leadsync.field_changes. A deployment's audit is its
// history: every row must come over with its id and values, the view must read as the table did,
// and the id sequence must go on where it stopped (the exporter counts audit rows by id). Run in a
// database of its own, migrated to version 13 first, with rows written as the old worker wrote them.
#include <gtest/gtest.h>

#include "common/pg.h"
#include "common/schema.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

// The configured URL with another database name.
std::string with_database(const std::string& url, const std::string& database) {
  const auto query = url.find('?');
  const auto slash = url.rfind('/', query == std::string::npos ? url.size() : query);
  return url.substr(0, slash + 1) + database + (query == std::string::npos ? "" : url.substr(query));
}

class AuditMigration : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("migr14"));
    database_ = config_.postgres.schema;  // a fresh, unique name
    admin_ = connect(config_);
    pqxx::nontransaction(*admin_).exec("CREATE DATABASE " + admin_->quote_name(database_));
    auto own = config_;
    own.postgres.url = with_database(config_.postgres.url, database_);
    conn_ = connect(own);
  }
  void TearDown() override {
    conn_.reset();
    pqxx::nontransaction(*admin_).exec("DROP DATABASE IF EXISTS " + admin_->quote_name(database_));
  }

  common::Config config_;
  std::string database_;
  std::unique_ptr<pqxx::connection> admin_, conn_;
};

TEST_F(AuditMigration, R6_EveryAuditRowMovesUnderItsIdTheViewReadsAsTheTableDidAndIdsGoOn) {
  ASSERT_EQ(common::migrate_leadsync_schema(*conn_, 13).size(), 13u);
  // As the worker of version 13 wrote them: a creation ('*'), two fields of one update, a delete,
  // NULLs on either side, and a Twenty `_updated_fields` row without a run.
  const std::string rows =
      "('lead', 'L1', '*', NULL, 'created', 'sheet', 'e1', now() - interval '2 days', 'r1'), "
      "('lead', 'L1', 'status', 'new', 'won', 'sheet', 'e2', now() - interval '1 day', 'r2'), "
      "('lead', 'L1', 'phone', NULL, '+49 30 1234', 'sheet', 'e2', now() - interval '1 day', 'r2'), "
      "('lead', 'L1', '_deleted', 'false', 'true', 'sheet', 'e3', now(), 'r3'), "
      "('lead', 'L2', 'notes', 'a \"quoted\" note', NULL, 'sheet', 'e4', now(), 'r3'), "
      "('lead', 'T9', '_updated_fields', NULL, '[\"name\",\"stage\"]', 'crm', 'w1', now(), NULL)";
  const std::string columns = "id, entity, key, field, old_value, new_value, source, event_id, at, run_id";
  {
    pqxx::work tx(*conn_);
    tx.exec("INSERT INTO leadsync.field_changes (entity, key, field, old_value, new_value, source, event_id, at, "
            "run_id) VALUES " + rows);
    tx.exec("DELETE FROM leadsync.field_changes WHERE field = 'notes'");  // a gap, as retention leaves them
    tx.exec("INSERT INTO leadsync.field_changes (entity, key, field, old_value, new_value) VALUES "
            "('lead', 'L2', 'notes', 'x', 'y')");
    tx.exec("CREATE TABLE before AS SELECT " + columns + " FROM leadsync.field_changes");
    tx.commit();
  }

  const auto report = common::migrate_leadsync_schema(*conn_, common::schema_version());
  ASSERT_EQ(report.size(), static_cast<std::size_t>(common::schema_version() - 13));

  pqxx::work tx(*conn_);
  EXPECT_EQ(tx.exec1("SELECT relkind FROM pg_class WHERE oid = 'leadsync.field_changes'::regclass")[0].as<std::string>(),
            "v");
  // Every row, column for column, through the view.
  const auto differ = tx.exec1("SELECT count(*) FROM ((SELECT * FROM before EXCEPT ALL SELECT " + columns +
                               " FROM leadsync.field_changes) UNION ALL (SELECT " + columns +
                               " FROM leadsync.field_changes EXCEPT ALL SELECT * FROM before)) d")[0]
                          .as<int64_t>();
  EXPECT_EQ(differ, 0);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM before")[0].as<int64_t>(), 6);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM leadsync.record_changes")[0].as<int64_t>(), 6);
  // The next audit row takes the id after the last one the table gave, not one of the old ids.
  const auto last = tx.exec1("SELECT max(id) FROM before")[0].as<int64_t>();
  const auto next = tx.exec1("INSERT INTO leadsync.record_changes (entity, key, changes) VALUES ('lead', 'L3', "
                             "'{{status, new, lost}}') RETURNING id")[0]
                        .as<int64_t>();
  EXPECT_EQ(next, last + 1);
  const auto view = tx.exec1("SELECT field, old_value, new_value FROM leadsync.field_changes WHERE id = " +
                             std::to_string(next));
  EXPECT_EQ(view[0].as<std::string>(), "status");
  EXPECT_EQ(view[1].as<std::string>(), "new");
  EXPECT_EQ(view[2].as<std::string>(), "lost");
}

}  // namespace
}  // namespace leadsync::testing
