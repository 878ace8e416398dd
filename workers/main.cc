// leadsync-worker: applies change events from Kafka to PostgreSQL until SIGTERM.
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>

#include "common/cli.h"
#include "common/errors.h"
#include "common/redact.h"
#include "workers/worker.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  leadsync::common::CommandLine cli("leadsync-worker", "leadsync-worker: applies change events from Kafka to PostgreSQL");
  if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
  leadsync::common::Telemetry telemetry("leadsync-worker");
  const auto loaded = cli.start(telemetry);
  if (!loaded) return leadsync::common::kExitUsage;
  const auto& config = *loaded;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  try {
    leadsync::workers::Worker worker(config, telemetry);
    worker.run(g_stop);
  } catch (const leadsync::common::ConfigError& e) {
    spdlog::error("{}", leadsync::common::redact(e.what()));
    return leadsync::common::kExitUsage;
  } catch (const std::exception& e) {
    spdlog::critical("worker failed: {}", leadsync::common::redact(e.what()));
    return leadsync::common::kExitFailed;
  }
  return 0;
}
