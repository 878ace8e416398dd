// R7 — verify, repair and rollback against the real broker and database: a lead sheet is synced by
// the producer and a worker, then PostgreSQL is corrupted behind leadsync's back (chosen fields of
// chosen rows, deleted rows, a tombstone, an extra row). verify must name exactly those records per
// field; repair must fix exactly those and nothing else; a second repair must find nothing to do;
// rollback must put the corrupted values back byte for byte.
#include "tests/integration/verify_fixture.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

// The defect: a record whose cell the mapping rejects was counted as "not compared" and, because
// its row was then never met, also as "in the database but gone from the source".
TEST_F(VerifyRepair, R7_ARejectedRecordIsNotComparedAndNotGone) {
  auto rows = sheet_rows();
  rows.at(7)[bench::kScore] = "not a number";
  write_sheet(rows);
  const auto report = ctl::verify_source(config_, source());
  EXPECT_EQ(report.rejected_records, 1) << ctl::format_report(report);
  EXPECT_EQ(report.extra_in_database, 0) << ctl::format_report(report);
  EXPECT_EQ(report.source_records, kRows - 1);
  EXPECT_EQ(report.matching, kRows - 1);
  EXPECT_FALSE(report.drift()) << ctl::format_report(report);
}

TEST_F(VerifyRepair, R7_VerifyFindsExactlyTheCorruptedFieldsMissingDeletedAndExtraRecords) {
  const auto planted = plant_standard_corruption();
  Found found;
  ctl::VerifyOptions options;
  options.samples = 100;
  options.memory_budget = 4096;  // forces the external sort to spill and merge several runs
  const auto report = ctl::verify_source(config_, source(), options, found.visitor());
  EXPECT_EQ(found.fields, planted.fields) << ctl::format_report(report);
  EXPECT_EQ(found.missing, planted.missing);
  EXPECT_EQ(found.deleted, planted.deleted);
  EXPECT_EQ(found.extra, planted.extra);
  for (const auto& [field, keys] : planted.fields_by_name()) {
    ASSERT_TRUE(report.fields.count(field)) << field;
    EXPECT_EQ(report.fields.at(field).count, static_cast<int64_t>(keys.size())) << field;
  }
  EXPECT_EQ(report.fields.size(), planted.fields_by_name().size());
  EXPECT_EQ(report.missing_in_database, static_cast<int64_t>(planted.missing.size()));
  EXPECT_EQ(report.deleted_in_database, static_cast<int64_t>(planted.deleted.size()));
  EXPECT_EQ(report.extra_in_database, static_cast<int64_t>(planted.extra.size()));
  EXPECT_EQ(report.matching, kRows - static_cast<int64_t>(planted.record_keys().size()));
  EXPECT_TRUE(report.drift());

  // --fields and --key narrow the comparison to what was asked.
  ctl::VerifyOptions narrow;
  narrow.fields = {"score"};
  const auto only_score = ctl::verify_source(config_, source(), narrow);
  EXPECT_EQ(only_score.fields.size(), 1u);
  EXPECT_TRUE(only_score.fields.count("score"));
  ctl::VerifyOptions one;
  one.keys = {*planted.missing.begin()};
  const auto single = ctl::verify_source(config_, source(), one);
  EXPECT_EQ(single.missing_in_database, 1);
  EXPECT_EQ(single.extra_in_database, 0) << ctl::format_report(single);
  EXPECT_TRUE(single.fields.empty()) << ctl::format_report(single);
}

}  // namespace
}  // namespace leadsync::testing
