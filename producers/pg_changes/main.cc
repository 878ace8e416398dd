// leadsync-capture: publishes applications' changes to the captured table (reverse: in the config)
// to the reverse topic until SIGTERM (design.md §9).
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>

#include "common/cli.h"
#include "common/errors.h"
#include "common/redact.h"
#include "producers/pg_changes/outbox_capture.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  leadsync::common::CommandLine cli("leadsync-capture",
                                    "leadsync-capture: publishes applications' PostgreSQL changes for the CRM");
  if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
  leadsync::common::Telemetry telemetry("leadsync-capture");
  const auto loaded = cli.start(telemetry);
  if (!loaded) return leadsync::common::kExitUsage;
  const auto& config = *loaded;
  if (!config.reverse.enabled) {
    spdlog::error("the configuration has no reverse: section; nothing to capture");
    return leadsync::common::kExitUsage;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  try {
    leadsync::producers::OutboxCapture capture(config, telemetry.registry());
    capture.run(g_stop, telemetry);
  } catch (const std::exception& e) {
    spdlog::critical("capture failed: {}", leadsync::common::redact(e.what()));
    return leadsync::common::kExitFailed;
  }
  return 0;
}
