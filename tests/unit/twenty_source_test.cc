// kind: twenty — the adapter against the fake Twenty server (R12): typed records with updatedAt as
// their version, composite fields by dotted path, incremental reads with soft deletes as deletes,
// resuming after the last fully returned page, records moving during a read, 429s, bad config.
#include "producers/twenty/twenty_source.h"

#include <cstdlib>
#include <map>

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/errors.h"
#include "tests/fakes/twenty/fake_twenty.h"

namespace leadsync::producers {
namespace {

using fakes::twenty::FakeTwenty;
using fakes::twenty::Object;
using fakes::twenty::WriteOrigin;

class TwentySourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv("TWENTY_TEST_KEY", fake.api_key().c_str(), 1);
    source.name = "crm";
    source.kind = "twenty";
    source.entity = "person";
    source.url = fake.base_url();
    source.key_column = "id";
    source.columns = {{"id", "twenty_id"},
                      {"name.firstName", "first_name"},
                      {"emails.primaryEmail", "email"},
                      {"phones.primaryPhoneNumber", "phone"},
                      {"updatedAt", "updated_at"}};
    source.http.backoff_base = std::chrono::milliseconds(1);
    settings.api_key_env = "TWENTY_TEST_KEY";
    settings.page_size = 60;
  }

  std::unique_ptr<TwentySource> adapter() {
    return std::make_unique<TwentySource>(source, settings, [this](std::chrono::milliseconds d) { waits.push_back(d); });
  }

  // Every record of the read: key -> (op, version); and the keys in order.
  std::vector<SourceRecord> read(SourceAdapter& a, std::size_t at_most = SIZE_MAX) {
    std::vector<SourceRecord> out;
    SourceRecord r;
    std::optional<std::string> error;
    while (out.size() < at_most && a.next(r, error)) {
      EXPECT_FALSE(error) << *error;
      out.push_back(r);
    }
    return out;
  }

  // What a full read fails with at its first record ("(no failure)" when it does not).
  std::string first_read_failure() {
    auto a = adapter();
    a->open();
    SourceRecord r;
    std::optional<std::string> error;
    try {
      a->next(r, error);
    } catch (const std::runtime_error& e) {
      return e.what();
    }
    return "(no failure)";
  }

  FakeTwenty fake;
  common::SourceConfig source;
  common::TwentySettings settings;
  std::vector<std::chrono::milliseconds> waits;
};

int64_t micros_of(const fakes::twenty::json& record, const char* field) {
  return *common::parse_timestamp_micros(record[field].get<std::string>());
}

TEST_F(TwentySourceTest, R12_ReadsEveryPersonAsATypedRecordVersionedByUpdatedAt) {
  auto ids = fake.store().seed_people(150);
  auto a = adapter();
  EXPECT_EQ(a->open(), "");
  const auto records = read(*a);
  ASSERT_EQ(records.size(), 150u);
  EXPECT_EQ(fake.list_requests(), 3);  // 60 + 60 + 30
  const auto& r = records[7];
  EXPECT_EQ(r.kind, CellKind::kTyped);
  EXPECT_EQ(r.key, ids[7]);
  EXPECT_EQ(r.op, RecordOp::kUpsert);
  ASSERT_EQ(r.values.size(), 5u);
  EXPECT_EQ(r.values[0].string_value(), ids[7]);
  EXPECT_EQ(r.values[1].string_value(), "First7");
  EXPECT_EQ(r.values[2].string_value(), "person7@example.com");
  EXPECT_EQ(r.values[3].string_value(), "5557");
  const auto stored = *fake.store().get(Object::kPeople, ids[7]);
  EXPECT_EQ(r.source_version, micros_of(stored, "updatedAt"));
  EXPECT_DOUBLE_EQ(a->progress(), 1.0);
}

TEST_F(TwentySourceTest, R12_IncrementalReadReturnsOnlyUpdatedRecordsAndSoftDeletesAsDeletes) {
  auto ids = fake.store().seed_people(100);
  auto a = adapter();
  ASSERT_TRUE(a->changes_since(Checkpoint{}));
  ASSERT_EQ(read(*a).size(), 100u);
  const auto cursor = *a->checkpoint();

  fake.store().update(Object::kPeople, ids[10], {{"name", {{"firstName", "Ten"}}}}, WriteOrigin::kTest);
  fake.store().update(Object::kPeople, ids[20], {{"city", "Rome"}}, WriteOrigin::kTest);
  const auto deleted = std::get<fakes::twenty::json>(fake.store().soft_delete(Object::kPeople, ids[30], WriteOrigin::kTest));

  auto b = adapter();
  ASSERT_TRUE(b->changes_since(cursor));
  std::map<std::string, SourceRecord> got;
  for (auto& r : read(*b)) got[r.key] = r;
  // The last record of the first read sits on the high-water mark (gte) and is read again.
  EXPECT_TRUE(got.count(ids[99]));
  got.erase(ids[99]);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[ids[10]].values[1].string_value(), "Ten");
  EXPECT_EQ(got[ids[20]].op, RecordOp::kUpsert);
  EXPECT_EQ(got[ids[30]].op, RecordOp::kDelete);
  EXPECT_EQ(got[ids[30]].source_version, micros_of(deleted, "deletedAt"));
  EXPECT_GT(got[ids[30]].source_version, got[ids[20]].source_version);

  // Nothing changed since: only the boundary records again, no deletes.
  auto c = adapter();
  ASSERT_TRUE(c->changes_since(*b->checkpoint()));
  for (const auto& r : read(*c)) {
    EXPECT_TRUE(r.key == ids[30] || r.key == ids[20]) << r.key;
  }
}

TEST_F(TwentySourceTest, R13_AnUpdateMadeWhileDeletesAreReadIsNotSkippedByTheNextRead) {
  auto ids = fake.store().seed_people(50);
  auto a = adapter();
  ASSERT_TRUE(a->changes_since(Checkpoint{}));
  read(*a);
  fake.store().soft_delete(Object::kPeople, ids[1], WriteOrigin::kTest);
  // Page 0 of the next read is its live phase, page 1 its deleted phase: between the two, one
  // record is updated and then another deleted (a later deletedAt than that update).
  fake.before_list([&](Object, int page) {
    if (page != 1) return;
    fake.store().update(Object::kPeople, ids[40], {{"city", "Oslo"}}, WriteOrigin::kTest);
    fake.store().soft_delete(Object::kPeople, ids[41], WriteOrigin::kTest);
  });
  auto b = adapter();
  ASSERT_TRUE(b->changes_since(*a->checkpoint()));
  read(*b);
  fake.before_list(nullptr);
  auto c = adapter();
  ASSERT_TRUE(c->changes_since(*b->checkpoint()));
  bool seen = false;
  for (const auto& r : read(*c)) seen = seen || (r.key == ids[40] && r.op == RecordOp::kUpsert);
  EXPECT_TRUE(seen);
}

TEST_F(TwentySourceTest, R4_ResumesAfterTheLastFullyReturnedPage) {
  auto ids = fake.store().seed_people(150);
  auto a = adapter();
  ASSERT_TRUE(a->changes_since(Checkpoint{}));
  const auto first = read(*a, 70);  // the whole first page and 10 of the second
  const auto cp = *a->checkpoint();
  auto b = adapter();
  ASSERT_TRUE(b->resume(cp));
  const auto rest = read(*b);
  ASSERT_EQ(rest.size(), 90u);  // the second page again from its start, and the third
  EXPECT_EQ(rest.front().key, ids[60]);
  EXPECT_EQ(rest.back().key, ids[149]);
  // A resumed read ends with the same high-water mark as an uninterrupted one.
  auto whole = adapter();
  ASSERT_TRUE(whole->changes_since(Checkpoint{}));
  read(*whole);
  EXPECT_EQ(nlohmann::json::parse(b->checkpoint()->value)["max_updated"],
            nlohmann::json::parse(whole->checkpoint()->value)["max_updated"]);
}

TEST_F(TwentySourceTest, R12_ARecordUpdatedDuringTheReadIsReadAgainWithItsNewerVersion) {
  auto ids = fake.store().seed_people(130);
  fake.before_list([&](Object, int page) {
    if (page == 1) fake.store().update(Object::kPeople, ids[5], {{"jobTitle", "CEO"}}, WriteOrigin::kTest);
  });
  auto a = adapter();
  a->open();
  std::vector<int64_t> versions;
  std::size_t total = 0;
  for (const auto& r : read(*a)) {
    ++total;
    if (r.key == ids[5]) versions.push_back(*r.source_version);
  }
  EXPECT_EQ(total, 131u);
  ASSERT_EQ(versions.size(), 2u);
  EXPECT_GT(versions[1], versions[0]);
}

TEST_F(TwentySourceTest, R12_BacksOffOnABurstOf429HonouringRetryAfter) {
  fake.store().seed_people(3);
  fake.fail_next(2, 429, 2);
  auto a = adapter();
  a->open();
  EXPECT_EQ(read(*a).size(), 3u);
  ASSERT_EQ(waits.size(), 2u);
  EXPECT_GE(waits[0], std::chrono::seconds(2));
  EXPECT_EQ(fake.requests_with_status(429), 2);
}

TEST_F(TwentySourceTest, R12_PacesItsRequestsUnderTheRateLimitInsteadOfBouncingOffIt) {
  fake.store().seed_people(200);
  settings.page_size = 10;
  fake.set_rate_limit(6, std::chrono::milliseconds(500));
  source.http.max_requests_per_second = 8;  // 4 per 500 ms: under the fake's 6
  TwentySource paced(source, settings);     // the real sleep
  const auto started = std::chrono::steady_clock::now();
  paced.open();
  EXPECT_EQ(read(paced).size(), 200u);
  EXPECT_EQ(fake.requests_with_status(429), 0);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 19 * std::chrono::milliseconds(125));
}

TEST_F(TwentySourceTest, AMappedPathThatIsNoFieldFailsTheReadNamingIt) {
  fake.store().seed_people(2);
  source.columns.push_back({"name.firstname", "first_name_typo"});
  const auto what = first_read_failure();
  EXPECT_NE(what.find("'name.firstname'"), std::string::npos) << what;
}

TEST_F(TwentySourceTest, AWrongApiKeyFailsTheReadWithAHintAndNoSecret) {
  setenv("TWENTY_TEST_KEY", "not-the-key", 1);
  const auto what = first_read_failure();
  EXPECT_NE(what.find("TWENTY_TEST_KEY"), std::string::npos) << what;
  EXPECT_EQ(what.find("not-the-key"), std::string::npos) << what;
}

TEST_F(TwentySourceTest, AnUnsetApiKeyVariableIsAConfigError) {
  settings.api_key_env = "TWENTY_TEST_KEY_UNSET";
  unsetenv("TWENTY_TEST_KEY_UNSET");
  EXPECT_THROW(adapter(), common::ConfigError);
}

TEST(TwentyConfig, ParsesTheTwentySectionAndRejectsBadValuesNamingTheKey) {
  const std::string head = R"(
entities:
  person:
    key: twenty_id
    fields:
      email: {type: text}
sources:
  - name: crm
    kind: twenty
    entity: person
    url: https://crm.example.com/rest
    key_column: id
    columns: {id: twenty_id, emails.primaryEmail: email}
)";
  const auto c = common::parse_config(head + R"(    twenty:
      object: companies
      page_size: 200
      webhook: {address: 127.0.0.1:0, secret_env: HOOK_SECRET, tolerance: 2m, queue: 10}
)");
  const auto& t = std::get<common::TwentySettings>(c.sources.at(0).settings);
  EXPECT_EQ(t.object, common::TwentyObject::kCompanies);
  EXPECT_EQ(t.page_size, 200);
  EXPECT_DOUBLE_EQ(c.sources.at(0).http.max_requests_per_second, 100.0 / 60.0);  // Twenty's limit by default
  const auto own = common::parse_config(head + "    http: {rate_limit: 30/min}\n");
  EXPECT_DOUBLE_EQ(own.sources.at(0).http.max_requests_per_second, 0.5);
  EXPECT_EQ(t.api_key_env, "TWENTY_API_KEY");
  ASSERT_TRUE(t.webhook_enabled);
  EXPECT_EQ(t.webhook.path, "/webhooks/twenty");
  EXPECT_EQ(t.webhook.tolerance, std::chrono::minutes(2));
  EXPECT_EQ(t.webhook.queue, 10);
  auto error_of = [&](const std::string& extra) -> std::string {
    try {
      common::parse_config(head + extra);
    } catch (const common::ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  };
  EXPECT_NE(error_of("    twenty: {object: deals}\n").find("sources[0].twenty.object"), std::string::npos);
  EXPECT_NE(error_of("    twenty: {page_size: 500}\n").find("twenty.page_size"), std::string::npos);
  EXPECT_NE(error_of("    twenty: {webhook: {address: 127.0.0.1:0}}\n").find("twenty.webhook.secret_env"),
            std::string::npos);
}

}  // namespace
}  // namespace leadsync::producers
