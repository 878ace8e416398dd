// The in-batch collapse (design.md §4, step 2) and event validation, without servers.
#include <gtest/gtest.h>

#include "workers/collapse.h"
#include "workers/validate.h"

namespace leadsync::workers {
namespace {

common::ChangeEvent event(const std::string& key, int64_t version, const std::string& run = "",
                          const std::string& entity = "lead") {
  common::ChangeEvent e;
  e.set_entity(entity);
  e.set_key(key);
  e.set_op(v1::OP_UPSERT);
  e.set_source_version(version);
  e.set_run_id(run);
  e.set_event_id(key + "@" + std::to_string(version));
  return e;
}

std::vector<const common::ChangeEvent*> pointers(const std::vector<common::ChangeEvent>& events) {
  std::vector<const common::ChangeEvent*> out;
  for (const auto& e : events) out.push_back(&e);
  return out;
}

common::Config config_with(bool partial_lead) {
  common::Config c;
  for (const auto* name : {"lead", "deal"}) {
    common::EntityConfig e;
    e.name = name;
    e.partial_events = partial_lead && e.name == "lead";
    c.entities.emplace(name, e);
  }
  return c;
}

using Round = std::map<std::string, std::vector<std::size_t>>;

TEST(Collapse, R13_AFullImageEntityAppliesTheNewestEventPerKeyAndCountsTheOthersAsStale) {
  const auto config = config_with(false);
  const std::vector<common::ChangeEvent> batch = {event("a", 5, "r1"), event("b", 1, "r1"), event("a", 7, "r2"),
                                                  event("a", 6, "r2"), event("c", 3, "r1", "deal")};
  const auto events = pointers(batch);
  BatchPlan plan(config, events);
  EXPECT_EQ(plan.next_round(), (Round{{"lead", {1, 2}}, {"deal", {4}}}));  // batch order
  EXPECT_EQ(plan.next_round(), Round{});
  std::map<std::string, ApplyCounts> stale;
  plan.count_unoffered(stale);
  EXPECT_EQ(stale["r1"].stale, 1);
  EXPECT_EQ(stale["r2"].stale, 1);
}

TEST(Collapse, R13_WhenTheNewestFailsTheNextNewestOfItsKeyIsOfferedInTheNextRound) {
  const auto config = config_with(false);
  const std::vector<common::ChangeEvent> batch = {event("a", 5), event("a", 7), event("a", 6), event("b", 1)};
  const auto events = pointers(batch);
  BatchPlan plan(config, events);
  EXPECT_EQ(plan.next_round(), (Round{{"lead", {1, 3}}}));
  plan.failed(1);
  EXPECT_EQ(plan.next_round(), (Round{{"lead", {2}}}));
  EXPECT_EQ(plan.next_round(), Round{});
  std::map<std::string, ApplyCounts> stale;
  plan.count_unoffered(stale);
  EXPECT_EQ(stale[""].stale, 1);  // v5: older than the applied v6
}

TEST(Collapse, R6_APartialEntityAppliesEveryEventOnePerKeyAndRoundNewestFirst) {
  const auto config = config_with(true);
  const std::vector<common::ChangeEvent> batch = {event("a", 11), event("a", 12), event("b", 3), event("a", 20)};
  const auto events = pointers(batch);
  BatchPlan plan(config, events);
  EXPECT_EQ(plan.next_round(), (Round{{"lead", {2, 3}}}));
  EXPECT_EQ(plan.next_round(), (Round{{"lead", {1}}}));
  EXPECT_EQ(plan.next_round(), (Round{{"lead", {0}}}));
  EXPECT_EQ(plan.next_round(), Round{});
  std::map<std::string, ApplyCounts> stale;
  plan.count_unoffered(stale);
  EXPECT_TRUE(stale.empty());
}

TEST(Collapse, R13_EqualVersionsAreOrderedByEventIdNotByPositionInTheBatch) {
  auto a = event("k", 4);
  a.set_event_id("id-a");
  auto b = event("k", 4);
  b.set_event_id("id-b");
  EXPECT_TRUE(newer_than(b, a));
  EXPECT_FALSE(newer_than(a, b));
  EXPECT_FALSE(newer_than(a, a));
  const auto config = config_with(false);
  for (const auto& batch : {std::vector<common::ChangeEvent>{a, b}, std::vector<common::ChangeEvent>{b, a}}) {
    const auto events = pointers(batch);
    BatchPlan plan(config, events);
    const auto round = plan.next_round();
    ASSERT_EQ(round.at("lead").size(), 1u);
    EXPECT_EQ(batch[round.at("lead")[0]].event_id(), "id-b");
  }
}

class Validation : public ::testing::Test {
 protected:
  Validation() {
    common::EntityConfig lead;
    lead.name = "lead";
    lead.table = "leads";
    lead.key = "id";
    lead.fields = {{"email", common::FieldType::kText, true}, {"score", common::FieldType::kInt, false}};
    config_.entities.emplace("lead", lead);
  }
  common::ChangeEvent full() {
    auto e = event("k", 1);
    (*e.mutable_fields())["email"].set_string_value("a@b.c");
    (*e.mutable_fields())["score"].set_int_value(3);
    return e;
  }
  common::Config config_;
};

TEST_F(Validation, AFullImageOfAKnownEntityFits) { EXPECT_EQ(validate_event(config_, full()), ""); }

TEST_F(Validation, R6_AFullImageThatLacksAFieldIsRejectedNamingIt) {
  auto e = full();
  e.mutable_fields()->erase("score");
  EXPECT_EQ(validate_event(config_, e), "full event lacks field 'score'");
}

TEST_F(Validation, WrongTypesUnknownFieldsAndEntitiesAreRejectedNamingThem) {
  auto e = full();
  (*e.mutable_fields())["score"].set_string_value("3");
  EXPECT_NE(validate_event(config_, e).find("field 'score'"), std::string::npos);
  e = full();
  (*e.mutable_fields())["nope"].set_int_value(1);
  EXPECT_NE(validate_event(config_, e).find("field 'nope'"), std::string::npos);
  e = full();
  e.set_entity("deal");
  EXPECT_EQ(validate_event(config_, e), "unknown entity 'deal'");
  e = full();
  e.set_source_version(0);
  EXPECT_EQ(validate_event(config_, e), "source_version must be positive");
  e = full();
  e.set_key("");
  EXPECT_EQ(validate_event(config_, e), "empty key");
}

TEST_F(Validation, PartialEventsNeedAnEntityThatAcceptsThem) {
  auto e = event("k", 1);
  e.set_partial(true);
  (*e.mutable_fields())["score"].set_int_value(1);
  EXPECT_NE(validate_event(config_, e).find("partial_events"), std::string::npos);
  config_.entities.at("lead").partial_events = true;
  EXPECT_EQ(validate_event(config_, e), "");
}

TEST_F(Validation, NulBytesInTheKeyOrATextValueAreRejectedNamingWhere) {
  auto e = full();
  e.set_key(std::string("k\0x", 3));
  EXPECT_EQ(validate_event(config_, e), "key contains a NUL byte at byte 2");
  e = full();
  (*e.mutable_fields())["email"].set_string_value(std::string("a\0@b.c", 6));
  EXPECT_EQ(validate_event(config_, e), "field 'email' contains a NUL byte at byte 2");
  e = full();
  e.set_source(std::string("s\0", 2));
  EXPECT_EQ(validate_event(config_, e), "source contains a NUL byte at byte 2");
}

TEST_F(Validation, InvalidUtf8InTheKeyOrATextValueIsRejectedNamingWhere) {
  auto e = full();
  e.set_key("caf\xe9");  // cp1252 é
  EXPECT_EQ(validate_event(config_, e), "key is not valid UTF-8 at byte 4");
  e = full();
  (*e.mutable_fields())["email"].set_string_value("ok\xc3\x28");
  EXPECT_EQ(validate_event(config_, e), "field 'email' is not valid UTF-8 at byte 3");
  e = full();
  (*e.mutable_fields())["email"].set_string_value("\xed\xa0\x80x");  // an encoded surrogate
  EXPECT_EQ(validate_event(config_, e), "field 'email' is not valid UTF-8 at byte 1");
  e = full();
  (*e.mutable_fields())["email"].set_string_value("Zo\xc3\xab \xe6\x97\xa5 \xf0\x9f\x99\x82");  // Zoë 日 🙂
  EXPECT_EQ(validate_event(config_, e), "");
}

TEST_F(Validation, ListItemsAreCheckedLikeTexts) {
  config_.entities.at("lead").fields.push_back({"tags", common::FieldType::kTextList, false});
  auto e = full();
  auto* tags = (*e.mutable_fields())["tags"].mutable_string_list();
  tags->add_values("fine");
  tags->add_values("bad\xff");
  EXPECT_EQ(validate_event(config_, e), "field 'tags' item 2 is not valid UTF-8 at byte 4");
}

}  // namespace
}  // namespace leadsync::workers
