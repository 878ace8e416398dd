// Issue 7 item 18 — secrets never reach logs, errors, metrics or leadsync.sync_runs: the one
// redaction function (common/redact.h) and the places that must use it.
#include "common/redact.h"

#include <gtest/gtest.h>

#include <spdlog/spdlog.h>

#include "common/logging.h"
#include "common/pg.h"

namespace leadsync::common {
namespace {

void expect_hidden(const std::string& text, const std::string& secret) {
  const auto out = redact(text);
  EXPECT_EQ(out.find(secret), std::string::npos) << text << " -> " << out;
  EXPECT_NE(out.find("***"), std::string::npos) << text << " -> " << out;
}

TEST(Redact, UrlUserinfoPasswordOfAnyScheme) {
  EXPECT_EQ(redact("postgresql://leadsync:s3cret@db:5432/leads"), "postgresql://leadsync:***@db:5432/leads");
  EXPECT_EQ(redact("https://bob:hunter2@example.test/x.csv"), "https://bob:***@example.test/x.csv");
  expect_hidden("fetch https://user:p@ss@host.test/a failed", "p@ss");
}

TEST(Redact, HttpTokenAsUserName) {
  EXPECT_EQ(redact("https://ghp_abcdef@host.test/sheet.csv"), "https://***@host.test/sheet.csv");
  // A PostgreSQL user name alone is not a secret.
  EXPECT_EQ(redact("postgresql://leadsync@db/leads"), "postgresql://leadsync@db/leads");
}

TEST(Redact, QueryStringSecretsButNotOrdinaryParameters) {
  EXPECT_EQ(redact("https://h.test/export?format=csv&gid=0&access_token=abc123"),
            "https://h.test/export?format=csv&gid=0&access_token=***");
  expect_hidden("GET https://h.test/x?apiKey=K123&page=2 returned 403", "K123");
  expect_hidden("https://s3.test/b/o?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA9", "deadbeef");
  expect_hidden("https://s3.test/b/o?X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA9", "AKIA9");
  expect_hidden("https://h.test/x?client_secret=zz9&sig=qq8", "zz9");
  EXPECT_EQ(redact("https://h.test/x?page=2&sort=name"), "https://h.test/x?page=2&sort=name");
}

TEST(Redact, LibpqConninfoPasswords) {
  EXPECT_EQ(redact("host=db user=u password=s3cret dbname=x"), "host=db user=u password=*** dbname=x");
  expect_hidden("host=db password='sec ret' dbname=x", "sec ret");
  expect_hidden("host=db PASSWORD = topsecret", "topsecret");
  expect_hidden("postgresql://db/x?password=s3cret&sslmode=require", "s3cret");
}

TEST(Redact, TokensLibpqEchoesIntoItsErrors) {
  // A password with a space: libpq reports the part after the space.
  EXPECT_EQ(redact(R"(missing "=" after "cd" in connection info string)"),
            R"(missing "=" after "***" in connection info string)");
  expect_hidden(R"(invalid percent-encoded token: "p%zz")", "p%zz");
}

TEST(Redact, AuthorizationAndBearerValues) {
  EXPECT_EQ(redact("Authorization: Bearer eyJhbGciOi.x.y"), "Authorization: ***");
  expect_hidden("request failed (header authorization=Basic dXNlcjpwYXNz)", "dXNlcjpwYXNz");
  expect_hidden("the server rejected bearer abc.def-ghi", "abc.def-ghi");
}

TEST(Redact, TextWithoutSecretsIsUnchanged) {
  for (const std::string s : {"source sales-sheet: 10 rows read", "https://h.test/leads.csv",
                              "host=db dbname=x user=u", "row 3: column 'email' is empty"}) {
    EXPECT_EQ(redact(s), s);
  }
}

TEST(Redact, HeaderValues) {
  EXPECT_EQ(redact_header("Authorization", "Bearer x"), "***");
  EXPECT_EQ(redact_header("X-Api-Key", "k"), "***");
  EXPECT_EQ(redact_header("Cookie", "session=1"), "***");
  EXPECT_EQ(redact_header("Accept", "text/csv"), "text/csv");
}

TEST(Redact, PgRedactUrlForwardsToTheOneFunction) {
  EXPECT_EQ(redact_url("postgresql://u:pw@h/db"), redact("postgresql://u:pw@h/db"));
  EXPECT_EQ(redact_url("host=h password=pw"), "host=h password=***");
}

TEST(Redact, LogLinesInBothFormatsAreRedacted) {
  for (const char* format : {"text", "json"}) {
    setup_logging(format, "info");
    testing::internal::CaptureStderr();
    spdlog::error("cannot connect to postgresql://u:pw-in-log@db/x: missing \"=\" after \"tail\"");
    spdlog::default_logger()->flush();
    const auto out = testing::internal::GetCapturedStderr();
    EXPECT_EQ(out.find("pw-in-log"), std::string::npos) << format << ": " << out;
    EXPECT_EQ(out.find("tail"), std::string::npos) << format << ": " << out;
    EXPECT_NE(out.find("postgresql://u:***@db/x"), std::string::npos) << format << ": " << out;
  }
}

}  // namespace
}  // namespace leadsync::common
