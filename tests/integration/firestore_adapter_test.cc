// The Firestore adapter against the real Firestore emulator (R12), without Kafka: full reads page by
// page with cursors, resuming from a checkpoint, incremental reads by a timestamp field
// (changes_since), sub-collections, collection groups and a structured-query filter.
#include <gtest/gtest.h>

#include <map>
#include <set>

#include "producers/firestore/firestore_source.h"
#include "tests/integration/cluster.h"
#include "tests/integration/firestore_support.h"

namespace leadsync::testing {
namespace {

using nlohmann::json;
using Keys = std::multiset<std::string>;

class FirestoreAdapter : public ::testing::Test {
 protected:
  FirestoreAdapter() : fs_(project_id(unique_tag("fsadapter"))) {}

  void SetUp() override {
    ASSERT_TRUE(fs_.available()) << "FIRESTORE_EMULATOR_HOST is not set: start the local cluster (dev/cluster up)";
  }

  common::SourceConfig source(const std::string& collection, int page_size = 7) {
    auto s = fs_.source("fs", "agent", collection, {{"__name__", "agent_id"}, {"email", "email"}});
    auto& f = std::get<common::FirestoreSettings>(s.settings);
    f.page_size = page_size;
    f.updated_field = "updatedAt";
    f.overlap = std::chrono::seconds(1);
    return s;
  }

  // Every record the adapter returns until the end, or until `limit` records.
  static Keys drain(producers::FirestoreSource& adapter, std::size_t limit = SIZE_MAX) {
    Keys keys;
    producers::SourceRecord record;
    std::optional<std::string> error;
    while (keys.size() < limit && adapter.next(record, error)) {
      EXPECT_FALSE(error) << *error;
      EXPECT_TRUE(record.source_version.has_value()) << "updateTime is the source version";
      keys.insert(record.key);
    }
    return keys;
  }

  // `updated_at` empty: document i was updated at 23:i of 2025-12-31 (distinct, increasing).
  void write_agents(const std::string& collection, int n, const std::string& updated_at, int first = 0) {
    std::vector<std::pair<std::string, json>> docs;
    for (int i = first; i < first + n; ++i) {
      char minute[32];
      std::snprintf(minute, sizeof minute, "2025-12-31T23:%02d:00Z", i % 60);
      const std::string stamp = updated_at.empty() ? minute : updated_at;
      docs.emplace_back(collection + "/a" + std::to_string(i),
                        json{{"email", fs_string("a" + std::to_string(i) + "@x.it")},
                             {"active", {{"booleanValue", i % 2 == 0}}},
                             {"updatedAt", fs_timestamp(stamp)}});
    }
    fs_.set(docs);
  }

  static Keys names(int first, int n) {
    Keys k;
    for (int i = first; i < first + n; ++i) k.insert("a" + std::to_string(i));
    return k;
  }

  FirestoreEmulator fs_;
};

TEST_F(FirestoreAdapter, R12_AFullReadReturnsEveryDocumentOnceAcrossPagesAndResumesFromItsCheckpoint) {
  write_agents("agents", 50, "2026-01-01T00:00:00Z");
  const auto config = source("agents");
  producers::FirestoreSource first(config, std::get<common::FirestoreSettings>(config.settings));
  first.open();
  auto head = drain(first, 20);
  ASSERT_EQ(head.size(), 20u);
  const auto cp = first.checkpoint();
  ASSERT_TRUE(cp.has_value());

  producers::FirestoreSource resumed(config, std::get<common::FirestoreSettings>(config.settings));
  ASSERT_TRUE(resumed.resume(*cp));
  const auto tail = drain(resumed);
  EXPECT_EQ(tail.size(), 30u);
  head.insert(tail.begin(), tail.end());
  EXPECT_EQ(head, names(0, 50)) << "each document exactly once over the interrupted and the resumed read";
  EXPECT_DOUBLE_EQ(resumed.progress(), 30.0 / 50.0) << "progress counts the resumed read against the collection";
}

TEST_F(FirestoreAdapter, R12_ChangesSinceReadsOnlyDocumentsWhoseTimestampFieldMovedAndAFullScanComesWhenDue) {
  write_agents("agents", 40, "");  // a39 is the newest, at 23:39
  auto config = source("agents");
  const auto& settings = std::get<common::FirestoreSettings>(config.settings);
  producers::FirestoreSource full(config, settings);
  full.open();
  ASSERT_EQ(drain(full).size(), 40u);
  const auto cp = full.checkpoint();
  ASSERT_TRUE(cp.has_value());

  write_agents("agents", 5, "2026-01-01T01:00:00Z", 10);  // a10..a14 changed an hour later
  write_agents("agents", 2, "2026-01-01T02:00:00Z", 40);  // a40, a41 are new
  producers::FirestoreSource changes(config, settings);
  ASSERT_TRUE(changes.changes_since(*cp));
  auto expected = names(10, 5);
  for (const auto& more : {names(40, 2), names(39, 1)}) expected.insert(more.begin(), more.end());
  EXPECT_EQ(drain(changes), expected) << "the changed and new documents, and a39 again: it is within `overlap` "
                                         "(1 s) of the newest value the full read saw";

  // The incremental checkpoint carries on from the newest value seen: nothing new, nothing read.
  const auto cp2 = changes.checkpoint();
  ASSERT_TRUE(cp2.has_value());
  producers::FirestoreSource idle(config, settings);
  ASSERT_TRUE(idle.changes_since(*cp2));
  EXPECT_EQ(drain(idle), names(40, 2)) << "only the overlap before the newest value is read again";

  // Once full_scan_every has passed since the last full read, only a full read finds deletions.
  auto due = config;
  std::get<common::FirestoreSettings>(due.settings).full_scan_every = std::chrono::milliseconds(1);
  producers::FirestoreSource declined(due, std::get<common::FirestoreSettings>(due.settings));
  EXPECT_FALSE(declined.changes_since(*cp2));
  // A source without an updated_field never reads incrementally.
  auto plain = config;
  std::get<common::FirestoreSettings>(plain.settings).updated_field.clear();
  producers::FirestoreSource no_field(plain, std::get<common::FirestoreSettings>(plain.settings));
  EXPECT_FALSE(no_field.changes_since(*cp2));
}

TEST_F(FirestoreAdapter, R12_SubCollectionsCollectionGroupsAndAFilter) {
  write_agents("teams/t1/agents", 3, "2026-01-01T00:00:00Z", 0);
  write_agents("teams/t2/agents", 4, "2026-01-01T00:00:00Z", 100);
  write_agents("agents", 2, "2026-01-01T00:00:00Z", 200);

  auto sub = source("teams/t1/agents");
  producers::FirestoreSource t1(sub, std::get<common::FirestoreSettings>(sub.settings));
  t1.open();
  EXPECT_EQ(drain(t1), names(0, 3));

  auto group = source("agents");
  std::get<common::FirestoreSettings>(group.settings).scope = common::FirestoreScope::kCollectionGroup;
  producers::FirestoreSource all(group, std::get<common::FirestoreSettings>(group.settings));
  all.open();
  auto expected = names(0, 3);
  for (const auto& more : {names(100, 4), names(200, 2)}) expected.insert(more.begin(), more.end());
  EXPECT_EQ(drain(all), expected);

  auto filtered = group;
  std::get<common::FirestoreSettings>(filtered.settings).where =
      R"({"fieldFilter": {"field": {"fieldPath": "active"}, "op": "EQUAL", "value": {"booleanValue": true}}})";
  producers::FirestoreSource active(filtered, std::get<common::FirestoreSettings>(filtered.settings));
  active.open();
  EXPECT_EQ(drain(active), (Keys{"a0", "a2", "a100", "a102", "a200"}));
}

}  // namespace
}  // namespace leadsync::testing
