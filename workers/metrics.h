// The worker's Prometheus metrics (design.md §7): base units, leadsync_ prefix, and labels that
// name only configuration (topic, result, error class, tier), never a record's key or data.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <string>

#include "common/errors.h"

namespace leadsync::workers {

struct WorkerMetrics {
  explicit WorkerMetrics(prometheus::Registry& registry);

  prometheus::Counter& consumed(const std::string& topic) { return consumed_.Add({{"topic", topic}}); }
  prometheus::Counter& applied(const std::string& result) { return applied_.Add({{"result", result}}); }
  prometheus::Counter& retried(int tier) { return retried_.Add({{"tier", std::to_string(tier)}}); }
  prometheus::Counter& dead_lettered(common::ErrorClass c) {
    return dead_lettered_.Add({{"error_class", common::error_class_name(c)}});
  }

  prometheus::Family<prometheus::Counter>& consumed_;
  prometheus::Family<prometheus::Counter>& applied_;
  prometheus::Family<prometheus::Counter>& retried_;
  prometheus::Family<prometheus::Counter>& dead_lettered_;
  prometheus::Histogram& batch_seconds;
  prometheus::Histogram& latency;
  prometheus::Gauge& database_up;
  prometheus::Gauge& assigned;
  prometheus::Counter& identity_links;
  prometheus::Gauge& lag;
  prometheus::Counter& forward_failures;
  prometheus::Counter& target_unavailable(const std::string& reason) {
    return target_unavailable_.Add({{"reason", reason}});
  }
  prometheus::Family<prometheus::Counter>& target_unavailable_;
  prometheus::Gauge& backoff_active;
};

}  // namespace leadsync::workers
