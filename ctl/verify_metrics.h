// `leadsyncctl verify --metrics-file PATH`: verify's result as Prometheus metrics, written in the
// text format for node_exporter's textfile collector (a short-lived command cannot be scraped), so
// that the LeadsyncVerifyDrift alert sees drift found by a scheduled verify.
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <string>
#include <vector>

#include "ctl/verify.h"

namespace leadsync::ctl {

// Records whose fields differ, missing in PostgreSQL, or extra in it.
int64_t drift_records(const VerifyReport& r);

struct VerifyMetrics {
  explicit VerifyMetrics(prometheus::Registry& registry);
  // `fields`: the fields compared (each gets a series, 0 when it matches).
  void record(const VerifyReport& r, double unix_seconds, const std::vector<std::string>& fields = {});

  prometheus::Family<prometheus::Gauge>& drift;
  prometheus::Family<prometheus::Gauge>& mismatches;  // {source, field}: 0 for a field that matches
  prometheus::Family<prometheus::Gauge>& last_run;
};

// Writes the registry to `path` atomically (a temporary file beside it, then rename), so the
// collector never reads half a file. Throws std::runtime_error naming the path.
void write_textfile(prometheus::Registry& registry, const std::string& path);

}  // namespace leadsync::ctl
