// The `postgres:` section's session limits: defaults, overrides and validation naming the key.
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/errors.h"

namespace leadsync::common {
namespace {

const char* kEntities = "entities: {lead: {table: leads, key: id, fields: {email: {type: text}}}}\n";

TEST(PostgresConfig, SessionLimitsHaveDefaultsThatStopAWorkerBlockingOnALock) {
  const auto c = parse_config(kEntities);
  EXPECT_EQ(c.postgres.statement_timeout_ms, 60'000);
  EXPECT_EQ(c.postgres.lock_timeout_ms, 10'000);
  EXPECT_EQ(c.postgres.idle_in_transaction_timeout_ms, 60'000);
}

TEST(PostgresConfig, SessionLimitsAreConfigurableAndZeroSwitchesThemOff) {
  const auto c = parse_config(std::string("postgres: {statement_timeout_ms: 5000, lock_timeout_ms: 0, "
                                          "idle_in_transaction_timeout_ms: 7000}\n") + kEntities);
  EXPECT_EQ(c.postgres.statement_timeout_ms, 5000);
  EXPECT_EQ(c.postgres.lock_timeout_ms, 0);
  EXPECT_EQ(c.postgres.idle_in_transaction_timeout_ms, 7000);
}

TEST(PostgresConfig, ANegativeOrNonNumericLimitIsRejectedNamingTheKey) {
  try {
    parse_config(std::string("postgres: {lock_timeout_ms: -1}\n") + kEntities);
    FAIL() << "accepted a negative lock timeout";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("postgres.lock_timeout_ms"), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_config(std::string("postgres: {statement_timeout_ms: soon}\n") + kEntities), ConfigError);
}

}  // namespace
}  // namespace leadsync::common
