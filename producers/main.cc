// leadsync-producer: runs the configured sources on their schedules (or once each with --once).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <thread>

#include "common/config.h"
#include "common/errors.h"
#include "common/kafka.h"
#include "common/logging.h"
#include "common/telemetry.h"
#include "producers/sync_run.h"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

void print_report(const leadsync::producers::RunReport& r) {
  nlohmann::json j = {{"run_id", r.run_id},
                      {"source", r.source},
                      {"status", std::string(leadsync::common::run_status_name(r.status))},
                      {"rows_read", r.rows_read},
                      {"new", r.new_records},
                      {"changed", r.changed_records},
                      {"unchanged", r.unchanged_records},
                      {"deleted", r.deleted_records},
                      {"failed", r.failed_records},
                      {"events_published", r.events_published},
                      {"snapshot_unchanged", r.snapshot_unchanged},
                      {"seconds", r.seconds},
                      {"message", r.message}};
  std::cout << j.dump() << std::endl;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"leadsync-producer: reads the configured sources and publishes their changes to Kafka"};
  std::string config_path, source_name, log_format = "text", log_level = "info", metrics_address;
  bool once = false, allow_mass_delete = false, full = false;
  app.add_option("--config", config_path, "configuration file (YAML)")->required();
  app.add_option("--source", source_name, "run only this source");
  app.add_flag("--once", once, "one run of each source (or of --source), then exit");
  app.add_flag("--allow-mass-delete", allow_mass_delete,
               "let runs delete more than a source's max_delete_fraction of its records");
  app.add_flag("--full", full, "publish every record, ignoring the stored per-key state");
  app.add_option("--log-format", log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error");
  app.add_option("--metrics-address", metrics_address, "serve /metrics, /healthz, /readyz on HOST:PORT");
  app.set_version_flag("--version", std::string("leadsync-producer ") + LEADSYNC_VERSION);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }

  leadsync::common::Config config;
  std::vector<const leadsync::common::SourceConfig*> sources;
  leadsync::common::Telemetry telemetry;
  try {
    leadsync::common::setup_logging(log_format, log_level);
    config = leadsync::common::load_config(config_path);
    for (const auto& s : config.sources) {
      if (source_name.empty() || s.name == source_name) sources.push_back(&s);
    }
    if (sources.empty()) {
      throw leadsync::common::ConfigError(source_name.empty() ? "no sources configured"
                                                              : "--source: no source named '" + source_name + "'");
    }
    if (!metrics_address.empty()) telemetry.serve(metrics_address);
  } catch (const std::exception& e) {
    std::cerr << "leadsync-producer: " << e.what() << "\n";
    return 2;
  }

  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  leadsync::common::KafkaProducer producer(config.kafka);
  leadsync::producers::ProducerMetrics metrics(telemetry.registry());
  leadsync::producers::RunOptions options;
  if (allow_mass_delete) options.mass_delete = leadsync::producers::MassDelete::kAllowed;
  if (full) options.state = leadsync::producers::StateUse::kFull;
  leadsync::producers::SyncRunner runner(config, producer, &metrics, options);
  telemetry.set_ready(true);

  if (once) {
    bool all_ok = true;
    for (const auto* s : sources) {
      telemetry.heartbeat();
      const auto report = runner.run(*s);
      print_report(report);
      if (report.status != leadsync::common::RunStatus::kCompleted) {
        spdlog::error("source {}: run failed: {}", s->name, report.message);
        all_ok = false;
      }
    }
    return all_ok ? 0 : 1;
  }

  // Scheduler: each source runs when its schedule comes due; a long run delays only itself.
  using Clock = std::chrono::steady_clock;
  std::vector<Clock::time_point> due(sources.size(), Clock::now());
  telemetry.set_stall_after(std::chrono::minutes(30));
  while (!g_stop.load()) {
    telemetry.heartbeat();
    for (std::size_t i = 0; i < sources.size() && !g_stop.load(); ++i) {
      if (Clock::now() < due[i]) continue;
      const auto report = runner.run(*sources[i]);
      print_report(report);
      if (report.status != leadsync::common::RunStatus::kCompleted) spdlog::error("source {}: run failed: {}", sources[i]->name, report.message);
      due[i] = Clock::now() + sources[i]->schedule;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  spdlog::info("leadsync-producer: stopping");
  return 0;
}
