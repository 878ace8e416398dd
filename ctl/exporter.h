// `leadsyncctl exporter`: the consumer group as the broker sees it — lag and committed position of
// the main topic, and the number of members — served on --metrics-address. The workers export their
// own lag, but with every worker down nothing would: this small long-running process keeps the
// "no progress while lag > 0" alert fed exactly when it matters (issue 13 item 3).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>

#include "common/config.h"
#include "common/telemetry.h"

namespace leadsync::ctl {

struct ExporterMetrics {
  explicit ExporterMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Gauge>& lag;        // by topic
  prometheus::Family<prometheus::Gauge>& committed;  // by topic
  prometheus::Gauge& members;
  prometheus::Counter& errors;
};

// Samples the group every `interval` until `stop`; a failed sample counts an error and is retried
// at the next interval. Returns the exit code.
int run_exporter(const common::Config& config, common::Telemetry& telemetry, std::chrono::milliseconds interval,
                 const std::atomic<bool>& stop);

}  // namespace leadsync::ctl
