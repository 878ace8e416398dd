// leadsync-worker: applies change events from Kafka to PostgreSQL until SIGTERM.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <iostream>

#include "common/config.h"
#include "common/errors.h"
#include "common/logging.h"
#include "common/telemetry.h"
#include "workers/worker.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"leadsync-worker: applies change events from Kafka to PostgreSQL"};
  std::string config_path, log_format = "text", log_level = "info", metrics_address;
  app.add_option("--config", config_path, "configuration file (YAML)")->required();
  app.add_option("--log-format", log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error");
  app.add_option("--metrics-address", metrics_address, "serve /metrics, /healthz, /readyz on HOST:PORT");
  app.set_version_flag("--version", std::string("leadsync-worker ") + LEADSYNC_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  leadsync::common::Config config;
  leadsync::common::Telemetry telemetry;
  try {
    leadsync::common::setup_logging(log_format, log_level);
    config = leadsync::common::load_config(config_path);
    if (!metrics_address.empty()) telemetry.serve(metrics_address);
  } catch (const std::exception& e) {
    std::cerr << "leadsync-worker: " << e.what() << "\n";
    return 2;
  }
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  try {
    leadsync::workers::Worker worker(config, telemetry);
    worker.run(g_stop);
  } catch (const leadsync::common::ConfigError& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("worker failed: {}", e.what());
    return 1;
  }
  return 0;
}
