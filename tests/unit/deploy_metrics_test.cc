// R10 — the alert rules and the dashboard in deploy/ use exactly the metric names the executables
// export: a renamed metric must not leave an alert that can never fire.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "producers/sync_run.h"
#include "workers/metrics.h"

namespace leadsync {
namespace {

std::set<std::string> exported_names() {
  prometheus::Registry registry;
  workers::WorkerMetrics worker(registry);
  producers::ProducerMetrics producer(registry);
  // A family without a child is not collected: give each labelled family one.
  worker.consumed("t");
  worker.applied("inserted");
  worker.retried(1);
  worker.dead_lettered(common::ErrorClass::kPermanent);
  producer.runs.Add({{"source", "s"}, {"status", "completed"}});
  producer.rows.Add({{"source", "s"}, {"result", "new"}});
  producer.events.Add({{"source", "s"}});
  producer.duration.Add({{"source", "s"}}, prometheus::Histogram::BucketBoundaries{1});
  producer.last_success.Add({{"source", "s"}});
  std::set<std::string> names;
  for (const auto& family : registry.Collect()) names.insert(family.name);
  return names;
}

std::set<std::string> referenced_names(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  std::stringstream text;
  text << in.rdbuf();
  const auto s = text.str();
  static const std::regex name(R"(leadsync_[a-z_]+)");
  std::set<std::string> out;
  for (auto it = std::sregex_iterator(s.begin(), s.end(), name); it != std::sregex_iterator(); ++it) {
    auto n = it->str();
    for (const char* suffix : {"_bucket", "_count", "_sum"}) {
      const std::string sfx(suffix);
      if (n.size() > sfx.size() && n.ends_with(sfx) && !n.ends_with("_total" + sfx)) n.resize(n.size() - sfx.size());
    }
    out.insert(n);
  }
  return out;
}

TEST(DeployMetrics, R10_AlertRulesAndDashboardUseOnlyExportedMetricNames) {
  const auto exported = exported_names();
  ASSERT_GT(exported.size(), 10u);
  for (const char* file : {"deploy/k8s/monitoring.yaml", "deploy/grafana/leadsync.json"}) {
    const auto used = referenced_names(std::string(LEADSYNC_SOURCE_DIR) + "/" + file);
    EXPECT_GT(used.size(), 5u) << file;
    for (const auto& n : used) {
      // Resource names (leadsync_config…) are not metrics; metrics carry a unit or _total.
      if (n.find("seconds") == std::string::npos && !n.ends_with("_total") && n.find("messages") == std::string::npos &&
          !n.ends_with("_up") && !n.ends_with("_partitions")) {
        continue;
      }
      EXPECT_TRUE(exported.count(n)) << file << " uses " << n << ", which no executable exports";
    }
  }
}

}  // namespace
}  // namespace leadsync
