#include "ctl/exporter.h"

#include <librdkafka/rdkafka.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/group_lag.h"
#include "common/metric_names.h"
#include "common/redact.h"
#include "common/pg.h"
#include "ctl/field_metrics.h"

namespace leadsync::ctl {

ExporterMetrics::ExporterMetrics(prometheus::Registry& registry)
    : lag(prometheus::BuildGauge()
              .Name(metric::kGroupLagMessages)
              .Help("Messages of the topic after the consumer group's committed offsets, summed over partitions")
              .Register(registry)),
      committed(prometheus::BuildGauge()
                    .Name(metric::kGroupCommittedMessages)
                    .Help("The consumer group's committed offsets summed over the topic's partitions: rises "
                          "while the workers make progress")
                    .Register(registry)),
      members(prometheus::BuildGauge()
                  .Name(metric::kGroupMembers)
                  .Help("Members of the consumer group as its coordinator reports them")
                  .Register(registry)
                  .Add({})),
      errors(prometheus::BuildCounter()
                 .Name(metric::kExporterErrors)
                 .Help("Samples of the consumer group that failed (broker unreachable, topic missing)")
                 .Register(registry)
                 .Add({})) {}

int run_exporter(const common::Config& config, common::Telemetry& telemetry, std::chrono::milliseconds interval,
                 const std::atomic<bool>& stop) {
  ExporterMetrics metrics(telemetry.registry());
  common::GroupLagReader reader(config.kafka, config.kafka.group, {config.kafka.topic});
  telemetry.set_stall_after(std::max<std::chrono::milliseconds>(interval * 4, std::chrono::seconds(60)));
  // Field-level counters from the database (ctl/field_metrics.h); a failure there counts an error
  // of its own and does not make the group's figures unready.
  FieldMetrics field_metrics(telemetry.registry());
  FieldCounter field_counter(config, field_metrics);
  std::unique_ptr<pqxx::connection> pg;
  while (!stop.load()) {
    telemetry.heartbeat();
    try {
      const auto s = reader.sample();
      metrics.lag.Add({{"topic", config.kafka.topic}}).Set(static_cast<double>(s.lag));
      metrics.committed.Add({{"topic", config.kafka.topic}}).Set(static_cast<double>(s.committed));
      metrics.members.Set(s.members);
      telemetry.set_ready(true);
    } catch (const std::exception& e) {
      metrics.errors.Increment();
      telemetry.set_ready(false);
      spdlog::warn("exporter: {}", common::redact(e.what()));
    }
    try {
      if (!pg || !pg->is_open()) pg = common::pg_connect(config.postgres, "leadsyncctl-exporter");
      field_counter.sample(*pg);
    } catch (const std::exception& e) {
      field_metrics.errors.Increment();
      pg.reset();
      spdlog::warn("exporter: field counters: {}", common::redact(e.what()));
    }
    for (auto waited = std::chrono::milliseconds(0); waited < interval && !stop.load();
         waited += std::chrono::milliseconds(100)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  return 0;
}

}  // namespace leadsync::ctl
