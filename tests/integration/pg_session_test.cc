// R5 — leadsync's connections carry session limits (postgres: statement_timeout_ms, lock_timeout_ms,
// idle_in_transaction_timeout_ms), so that a record waiting on a row lock fails with a retryable
// error instead of blocking its worker until the consumer group evicts it.
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "common/pg.h"
#include "common/schema.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

TEST(PgSession, R5_AnUpdateOfALockedRowFailsWithARetryableLockTimeoutInsteadOfBlocking) {
  auto config = isolated_example_config(unique_tag("pg_session"));
  config.postgres.lock_timeout_ms = 300;
  auto holder = connect(config);
  common::migrate(*holder, config);
  const auto table = common::qualified(*holder, config.postgres.schema, "leads");
  pqxx::nontransaction(*holder).exec("INSERT INTO " + table + " (lead_id, _version) VALUES ('L-1', 1)");

  pqxx::work lock(*holder);
  lock.exec("SELECT 1 FROM " + table + " WHERE lead_id = 'L-1' FOR UPDATE");
  auto waiter = std::async(std::launch::async, [&]() -> std::string {
    auto conn = common::pg_connect(config.postgres, "leadsync-tests");
    try {
      pqxx::work tx(*conn);
      tx.exec("UPDATE " + table + " SET _version = 2 WHERE lead_id = 'L-1'");
      tx.commit();
      return "updated";
    } catch (const std::exception& e) {
      return common::classify_pg_error(e) == common::ErrorClass::kRetryable ? common::pg_sqlstate(e) : e.what();
    }
  });
  // Without the limit the update waits for the lock: release it after a while, so that the test
  // fails instead of hanging.
  const bool finished_alone = waiter.wait_for(5s) == std::future_status::ready;
  lock.abort();
  EXPECT_TRUE(finished_alone) << "the update blocked on the row lock";
  EXPECT_EQ(waiter.get(), "55P03");

  pqxx::work tx(*holder);
  tx.exec("DROP SCHEMA " + holder->quote_name(config.postgres.schema) + " CASCADE");
  tx.commit();
}

TEST(PgSession, TheSessionLimitsComeFromThePostgresSectionOfTheConfig) {
  auto config = isolated_example_config(unique_tag("pg_session"));
  config.postgres.statement_timeout_ms = 1234;
  config.postgres.lock_timeout_ms = 0;
  config.postgres.idle_in_transaction_timeout_ms = 4321;
  auto conn = common::pg_connect(config.postgres, "leadsync-tests");
  pqxx::work tx(*conn);
  EXPECT_EQ(tx.exec1("SHOW statement_timeout")[0].as<std::string>(), "1234ms");
  EXPECT_EQ(tx.exec1("SHOW lock_timeout")[0].as<std::string>(), "0");
  EXPECT_EQ(tx.exec1("SHOW idle_in_transaction_session_timeout")[0].as<std::string>(), "4321ms");
}

}  // namespace
}  // namespace leadsync::testing
