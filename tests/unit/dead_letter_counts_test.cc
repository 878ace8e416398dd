// Issue 10 item 7 — dead letters per source and error class for the status page
// (common/dead_letter_tally.h): a dead letter belongs to the configured source its payload names,
// anything else is unattributed, and the counts stay bounded however many names the payloads carry.
#include "common/dead_letter_tally.h"

#include <gtest/gtest.h>

#include "common/mapping.h"

namespace leadsync::common {
namespace {

std::string event_of(const std::string& source) {
  ChangeEvent e;
  e.set_source(source);
  e.set_entity("lead");
  e.set_key("k1");
  e.set_op(v1::OP_UPSERT);
  (*e.mutable_fields())["favourite_colour"].set_string_value("teal");
  return e.SerializeAsString();
}

TEST(DeadLetterCounts, R5_ADeadLetterCountsUnderTheConfiguredSourceItsPayloadNamesAndItsClass) {
  DeadLetterCounts counts({"sheet", "crm"});
  counts.add(event_of("sheet"), "permanent");
  counts.add(event_of("sheet"), "permanent");
  counts.add(event_of("sheet"), "retryable");
  counts.add(event_of("crm"), "infrastructure");
  EXPECT_EQ(counts.of("sheet"), (DeadLetterCounts::ByClass{{"permanent", 2}, {"retryable", 1}}));
  EXPECT_EQ(counts.of("crm"), (DeadLetterCounts::ByClass{{"infrastructure", 1}}));
  EXPECT_TRUE(counts.of("nobody").empty());
  EXPECT_TRUE(counts.unattributed().empty());
  EXPECT_EQ(counts.total(), 4);
}

TEST(DeadLetterCounts, R5_APayloadThatIsNoChangeEventOrNamesNoConfiguredSourceIsUnattributed) {
  DeadLetterCounts counts({"sheet"});
  counts.add(R"({"lead_id": "not a ChangeEvent"})", "permanent");
  counts.add(event_of("a-source-removed-from-the-config"), "permanent");
  counts.add(event_of("sheet"), "no-such-class");
  counts.add(event_of("sheet"), "");
  EXPECT_EQ(counts.unattributed(), (DeadLetterCounts::ByClass{{"permanent", 2}}));
  EXPECT_EQ(counts.of("sheet"), (DeadLetterCounts::ByClass{{"other", 2}}));
  EXPECT_EQ(counts.total(), 4);
}

TEST(DeadLetterCounts, R5_ManyDistinctSourceNamesAndClassesInPayloadsKeepTheCountsBounded) {
  DeadLetterCounts counts({"sheet"});
  for (int i = 0; i < 5000; ++i) {
    counts.add(event_of("source-" + std::to_string(i)), "class-" + std::to_string(i));
    counts.add(event_of("sheet"), "class-" + std::to_string(i));
  }
  EXPECT_EQ(counts.unattributed(), (DeadLetterCounts::ByClass{{"other", 5000}}));
  EXPECT_EQ(counts.of("sheet"), (DeadLetterCounts::ByClass{{"other", 5000}}));
  EXPECT_TRUE(counts.of("source-1").empty());
  EXPECT_EQ(counts.total(), 10000);
}

}  // namespace
}  // namespace leadsync::common
