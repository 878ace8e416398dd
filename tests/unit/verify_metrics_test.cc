// R7/R10: what `leadsyncctl verify --metrics-file` writes: per source and compared field the number of
// records that differ (0 for a field that matches, so an alert sees drift go away), and the time of
// the run.
#include <gtest/gtest.h>

#include <prometheus/text_serializer.h>

#include "ctl/verify_metrics.h"

namespace leadsync::ctl {
namespace {

TEST(VerifyMetrics, R7_MismatchesPerSourceAndFieldIncludingZeroForMatchingFields) {
  prometheus::Registry registry;
  VerifyMetrics metrics(registry);
  VerifyReport report;
  report.source = "sheet";
  report.source_records = 10;
  report.matching = 7;
  report.fields["email"].count = 2;
  report.fields["score"].count = 1;
  metrics.record(report, 1234.5, {"email", "name", "score"});
  const auto text = prometheus::TextSerializer().Serialize(registry.Collect());
  EXPECT_NE(text.find("leadsync_verify_mismatches{field=\"email\",source=\"sheet\"} 2"), std::string::npos) << text;
  EXPECT_NE(text.find("leadsync_verify_mismatches{field=\"score\",source=\"sheet\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("leadsync_verify_mismatches{field=\"name\",source=\"sheet\"} 0"), std::string::npos) << text;
  EXPECT_NE(text.find("leadsync_verify_last_run_timestamp_seconds{source=\"sheet\"} 1234.5"), std::string::npos)
      << text;
  EXPECT_NE(text.find("leadsync_verify_drift_records{source=\"sheet\"} 3"), std::string::npos) << text;
}

}  // namespace
}  // namespace leadsync::ctl
