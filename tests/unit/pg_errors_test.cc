// Error classes decide what happens to a record: retry tier, dead-letter topic, or pause (R5).
#include <gtest/gtest.h>

#include "common/pg.h"

namespace leadsync::common {
namespace {

ErrorClass of(const char* sqlstate) { return classify_pg_error(pqxx::sql_error("boom", "SELECT 1", sqlstate)); }

TEST(PgErrors, TransientConflictsGoToTheRetryTiers) {
  // What libpqxx actually throws for 40001 / 40P01: not sql_error subclasses.
  EXPECT_EQ(classify_pg_error(pqxx::serialization_failure("x")), ErrorClass::kRetryable);
  EXPECT_EQ(classify_pg_error(pqxx::deadlock_detected("x")), ErrorClass::kRetryable);
  EXPECT_EQ(of("40001"), ErrorClass::kRetryable);  // serialization_failure
  EXPECT_EQ(of("40P01"), ErrorClass::kRetryable);  // deadlock_detected
  EXPECT_EQ(of("55P03"), ErrorClass::kRetryable);  // lock_not_available
  EXPECT_EQ(of("57014"), ErrorClass::kRetryable);  // query_canceled (statement timeout)
}

TEST(PgErrors, AForeignKeyWhoseParentIsNotThereYetIsRetriedNotDeadLettered) {
  // The parent row may arrive later on another partition (design.md §4, step 5).
  EXPECT_EQ(of("23503"), ErrorClass::kRetryable);  // foreign_key_violation
}

TEST(PgErrors, BadDataIsPermanent) {
  EXPECT_EQ(of("22P02"), ErrorClass::kPermanent);  // invalid_text_representation
  EXPECT_EQ(of("23505"), ErrorClass::kPermanent);  // unique_violation
  EXPECT_EQ(of("23514"), ErrorClass::kPermanent);  // check_violation
}

TEST(PgErrors, AnUnreachableOrMisfitDatabaseIsInfrastructureNotARecordFailure) {
  EXPECT_EQ(classify_pg_error(pqxx::broken_connection("gone")), ErrorClass::kInfrastructure);
  EXPECT_EQ(of("08006"), ErrorClass::kInfrastructure);  // connection_failure
  EXPECT_EQ(of("57P01"), ErrorClass::kInfrastructure);  // admin_shutdown
  EXPECT_EQ(of("53300"), ErrorClass::kInfrastructure);  // too_many_connections
  EXPECT_EQ(of("42P01"), ErrorClass::kInfrastructure);  // undefined_table: every record would fail
  EXPECT_EQ(of("42501"), ErrorClass::kInfrastructure);  // insufficient_privilege
}

TEST(PgErrors, PasswordsAreRedactedFromUrls) {
  EXPECT_EQ(redact_url("postgresql://app:s3cret@db:5432/leads"), "postgresql://app:***@db:5432/leads");
  EXPECT_EQ(redact_url("host=db password=s3cret dbname=x"), "host=db password=*** dbname=x");
  EXPECT_EQ(redact_url("postgresql://app@db/leads"), "postgresql://app@db/leads");
}

}  // namespace
}  // namespace leadsync::common
