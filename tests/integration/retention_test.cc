// Retention (issue 11 item 6) against the real database: cleanup deletes exactly the history rows
// older than each table's retention, in batches, and keeps the rest; a dry run deletes nothing.
#include <gtest/gtest.h>

#include "ctl/retention.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

TEST(Retention, R6_CleanupDeletesOnlyHistoryOlderThanItsRetentionInBatches) {
  const auto tag = unique_tag("retention");
  const auto config = isolated_example_config(tag);
  IsolatedEnvironment env(config);
  auto conn = connect(config);
  auto count = [&](const std::string& table, const std::string& column) {
    pqxx::work tx(*conn);
    return tx.exec_params1("SELECT count(*) FROM leadsync." + table + " WHERE " + column + " = $1", tag)[0].as<int64_t>();
  };
  {
    pqxx::work tx(*conn);
    // 7 old and 2 recent rows in each table (ages in days), tagged with this test's name.
    for (int age : {500, 450, 401, 200, 120, 95, 91, 10, 0}) {
      const auto at = "now() - make_interval(days => " + std::to_string(age) + ")";
      tx.exec_params("INSERT INTO leadsync.record_changes (entity, key, changes, at) VALUES ($1, 'k', '{{f, a, b}}', " + at + ")",
                     tag);
      tx.exec_params("INSERT INTO leadsync.run_apply_stats (run_id, at) VALUES ($1, " + at + ")", tag);
      tx.exec_params("INSERT INTO leadsync.run_errors (run_id, source, message, at) VALUES ($1, 's', 'm', " + at + ")",
                     tag);
      tx.exec_params("INSERT INTO leadsync.backups (backup_id, entity, key, created_at) VALUES ($1, 'lead', 'k', " + at +
                         ")",
                     tag);
    }
    tx.commit();
  }
  ctl::Retention retention;
  retention.field_changes_days = 400;  // 3 older
  retention.run_history_days = 90;     // 7 older
  retention.backups_days = 30;         // 7 older
  retention.batch = 2;                 // several batches per table

  const auto dry = ctl::cleanup(config, retention, ctl::CleanupMode::kDryRun);
  ASSERT_EQ(dry.size(), 4u);
  EXPECT_GE(dry[0].deleted, 3);
  EXPECT_EQ(count("record_changes", "entity"), 9);

  ctl::cleanup(config, retention, ctl::CleanupMode::kDelete);
  EXPECT_EQ(count("record_changes", "entity"), 6);
  EXPECT_EQ(count("run_apply_stats", "run_id"), 2);
  EXPECT_EQ(count("run_errors", "run_id"), 2);
  EXPECT_EQ(count("backups", "backup_id"), 2);
}

}  // namespace
}  // namespace leadsync::testing
