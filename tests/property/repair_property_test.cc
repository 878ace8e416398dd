// R7 as a property, against the real broker and database: whatever rows and fields are corrupted,
// deleted, made tombstones or added behind leadsync's back, repair re-syncs exactly those records,
// verify is clean afterwards, and a second repair finds nothing to do.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include "ctl/repair.h"
#include "tests/integration/verify_fixture.h"

namespace leadsync::testing {
namespace {

TEST_F(VerifyRepair, R7_ForAnyCorruptionRepairThenVerifyIsCleanAndRepairIsIdempotent) {
  std::vector<std::string> fields;
  for (const auto& f : config_.entity("lead").fields) fields.push_back(f.name);
  int cases = 0;
  rc::detail::checkGTest([&] {
    ++cases;
    auto any_key = [] { return key(*rc::gen::inRange<int64_t>(0, kRows)); };
    Corruption c;
    for (int n = *rc::gen::inRange(0, 3); n > 0; --n) c.missing.insert(any_key());
    for (int n = *rc::gen::inRange(0, 3); n > 0; --n) {
      const auto k = any_key();
      if (!c.missing.count(k)) c.deleted.insert(k);
    }
    for (int n = *rc::gen::inRange(0, 8); n > 0; --n) {
      const auto k = any_key();
      if (!c.missing.count(k) && !c.deleted.count(k)) c.fields.insert({k, *rc::gen::elementOf(fields)});
    }
    for (int n = *rc::gen::inRange(0, 3); n > 0; --n) c.extra.insert("X-" + std::to_string(cases) + "-" + std::to_string(n));
    RC_CLASSIFY(c.fields.empty() && c.missing.empty() && c.deleted.empty() && c.extra.empty(), "no corruption");
    corrupt(c);
    Keys drifted = c.record_keys();
    drifted.insert(c.extra.begin(), c.extra.end());

    const auto repaired = ctl::repair_source(config_, source(), {});
    RC_ASSERT(Keys(repaired.keys.begin(), repaired.keys.end()) == drifted);
    if (!drifted.empty()) {
      const auto events = static_cast<int64_t>(drifted.size());
      RC_ASSERT(eventually([&] { return accounted_events(*conn_, repaired.run_id) >= events; }, std::chrono::seconds(60)));
    }
    const auto after = ctl::verify_source(config_, source());
    if (after.drift()) RC_FAIL("drift after repair:\n" + ctl::format_report(after));
    RC_ASSERT(after.matching == kRows);
    const auto again = ctl::repair_source(config_, source(), {});
    RC_ASSERT(again.keys.empty());
    RC_ASSERT(again.run_id.empty());
  });
  EXPECT_GE(cases, 100);
}

}  // namespace
}  // namespace leadsync::testing
