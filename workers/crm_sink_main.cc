// leadsync-crm-sink: applies the reverse direction's events (PostgreSQL changes) to the CRM until
// SIGTERM — the worker's consume loop, retry tiers and DLQ on reverse.topic, with the Twenty target.
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>

#include "common/cli.h"
#include "common/errors.h"
#include "common/redact.h"
#include "workers/targets/twenty_target.h"
#include "workers/worker.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  leadsync::common::CommandLine cli("leadsync-crm-sink", "leadsync-crm-sink: applies PostgreSQL changes to the CRM");
  if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
  leadsync::common::Telemetry telemetry("leadsync-crm-sink");
  const auto loaded = cli.start(telemetry);
  if (!loaded) return leadsync::common::kExitUsage;
  const auto& config = *loaded;
  if (!config.reverse.enabled) {
    spdlog::error("the configuration has no reverse: section; nothing to apply");
    return leadsync::common::kExitUsage;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  try {
    const auto sink_config = leadsync::common::reverse_worker_config(config);
    leadsync::workers::Worker worker(sink_config, telemetry,
                                     [&config](leadsync::workers::WorkerMetrics& metrics, prometheus::Registry& registry) {
                                       return std::make_unique<leadsync::workers::TwentyTarget>(config, metrics, registry);
                                     });
    worker.run(g_stop);
  } catch (const std::exception& e) {
    spdlog::critical("crm sink failed: {}", leadsync::common::redact(e.what()));
    return leadsync::common::kExitFailed;
  }
  return 0;
}
