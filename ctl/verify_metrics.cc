#include "ctl/verify_metrics.h"

#include <prometheus/text_serializer.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "common/metric_names.h"

namespace leadsync::ctl {

int64_t drift_records(const VerifyReport& r) {
  // source_records - matching: missing ones and those with a differing field; plus extra rows.
  return r.source_records - r.matching + r.extra_in_database;
}

VerifyMetrics::VerifyMetrics(prometheus::Registry& registry)
    : drift(prometheus::BuildGauge()
                .Name(metric::kVerifyDriftRecords)
                .Help("Records that differ between the source and PostgreSQL at the last verify, by source")
                .Register(registry)),
      mismatches(prometheus::BuildGauge()
                     .Name(metric::kVerifyMismatches)
                     .Help("Records whose field differs between the source and PostgreSQL at the last verify")
                     .Register(registry)),
      last_run(prometheus::BuildGauge()
                   .Name(metric::kVerifyLastRunTimestamp)
                   .Help("Unix time of the last verify of a source")
                   .Register(registry)) {}

void VerifyMetrics::record(const VerifyReport& r, double unix_seconds, const std::vector<std::string>& fields) {
  drift.Add({{"source", r.source}}).Set(static_cast<double>(drift_records(r)));
  for (const auto& f : fields) mismatches.Add({{"source", r.source}, {"field", f}}).Set(0);
  for (const auto& [f, d] : r.fields) mismatches.Add({{"source", r.source}, {"field", f}}).Set(static_cast<double>(d.count));
  last_run.Add({{"source", r.source}}).Set(unix_seconds);
}

void write_textfile(prometheus::Registry& registry, const std::string& path) {
  const auto tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    prometheus::TextSerializer().Serialize(out, registry.Collect());
    out.flush();
    if (!out) throw std::runtime_error("cannot write metrics file " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

}  // namespace leadsync::ctl
