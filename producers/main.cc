// leadsync-producer: runs the configured sources on their schedules (or once each with --once).
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <csignal>
#include <iostream>
#include <map>
#include <memory>
#include <thread>

#include "common/cli.h"
#include "common/errors.h"
#include "common/kafka_producer.h"
#include "common/pg.h"
#include "common/runs.h"
#include "common/runs_schedule.h"
#include "common/redact.h"
#include "common/telemetry.h"
#include "producers/api/api_server.h"
#include "producers/sync_run.h"
#include "producers/twenty/webhook_receiver.h"

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
                      {"message", leadsync::common::redact(r.message)}};
  // Only when they say something, so that the line of an ordinary run stays as it was.
  if (!r.resumed_from.empty()) j["resumed_from"] = r.resumed_from;
  if (r.incremental) j["incremental"] = true;
  std::cout << j.dump() << std::endl;
}

// --once --wait: until the run is `completed` in leadsync.sync_runs, which it becomes when the
// workers' results for it (joined by its id) account for every event it published.
bool wait_until_applied(const leadsync::common::Config& config, const leadsync::producers::RunReport& report,
                        std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto conn = leadsync::common::pg_connect(config.postgres.url, "leadsync-producer");
  leadsync::common::RunStore store(*conn, config.runs.heartbeat_interval);
  std::optional<leadsync::common::RunInfo> run;
  while (!g_stop.load()) {
    run = store.get(report.run_id);
    if (run && run->status == leadsync::common::RunStatus::kCompleted) {
      spdlog::info("source {}: run {}: completed, all {} events applied or dead-lettered", report.source,
                   report.run_id, report.events_published);
      return true;
    }
    if (run && run->status != leadsync::common::RunStatus::kRunning) {
      spdlog::error("source {}: run {}: {}: {}", report.source, report.run_id,
                    leadsync::common::run_status_name(run->status), run->error);
      return false;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  spdlog::error("source {}: run {}: {} of {} events applied when --wait gave up", report.source, report.run_id,
                run ? run->applied.total() : 0, report.events_published);
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  leadsync::common::CommandLine cli("leadsync-producer",
                                    "leadsync-producer: reads the configured sources and publishes their changes to Kafka");
  std::string source_name;
  bool once = false, allow_mass_delete = false, full = false;
  cli.app().add_option("--source", source_name, "run only this source");
  cli.app().add_flag("--once", once, "one run of each source (or of --source), then exit");
  cli.app().add_flag("--allow-mass-delete", allow_mass_delete,
                     "let runs delete more than a source's max_delete_fraction of its records");
  cli.app().add_flag("--full", full, "publish every record, ignoring the stored per-key state");
  bool wait = false;
  int wait_timeout_s = 3600;
  cli.app().add_flag("--wait", wait,
                     "with --once: return when the workers applied or dead-lettered every event of the run, "
                     "not when publishing is done");
  cli.app().add_option("--wait-timeout", wait_timeout_s, "seconds --wait waits at most (default 3600); then exit 1");
  if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
  leadsync::common::Telemetry telemetry("leadsync-producer");
  const auto loaded = cli.start(telemetry);
  if (!loaded) return leadsync::common::kExitUsage;
  const auto& config = *loaded;
  std::vector<const leadsync::common::SourceConfig*> sources;
  for (const auto& s : config.sources) {
    if (source_name.empty() || s.name == source_name) sources.push_back(&s);
  }
  if (sources.empty()) {
    std::cerr << "leadsync-producer: "
              << (source_name.empty() ? "no sources configured" : "--source: no source named '" + source_name + "'")
              << "\n";
    return leadsync::common::kExitUsage;
  }

  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  // A property librdkafka rejects is caught when the configuration is loaded; this guards what only
  // the client's construction can tell (e.g. a missing SASL mechanism plugin).
  std::unique_ptr<leadsync::common::KafkaProducer> producer_handle;
  try {
    producer_handle = std::make_unique<leadsync::common::KafkaProducer>(config.kafka);
  } catch (const std::exception& e) {
    std::cerr << "leadsync-producer: " << leadsync::common::redact(e.what()) << "\n";
    return leadsync::common::kExitUsage;
  }
  auto& producer = *producer_handle;
  leadsync::producers::ProducerMetrics metrics(telemetry.registry());
  leadsync::common::export_source_schedules(telemetry.registry(), config);
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
        spdlog::error("source {}: run failed: {}", s->name, leadsync::common::redact(report.message));
        all_ok = false;
      } else if (wait && !wait_until_applied(config, report, std::chrono::seconds(wait_timeout_s))) {
        all_ok = false;
      }
    }
    return all_ok ? 0 : 1;
  }

  // The HTTP API and status page (producers/api), when api.address is set.
  std::unique_ptr<leadsync::producers::api::ApiServer> api;
  if (!config.api.address.empty()) {
    try {
      api = std::make_unique<leadsync::producers::api::ApiServer>(
          config, leadsync::producers::api::api_access_from_env(config.api));
      api->start(config.api.address);
    } catch (const std::exception& e) {
      std::cerr << "leadsync-producer: " << leadsync::common::redact(e.what()) << "\n";
      return leadsync::common::kExitUsage;
    }
  }

  // Twenty's signed webhooks (producers/twenty) for the twenty sources that have a webhook section.
  std::unique_ptr<leadsync::producers::WebhookReceivers> webhooks;
  try {
    webhooks = std::make_unique<leadsync::producers::WebhookReceivers>(
        config, sources, &telemetry.registry(), [&telemetry](bool ready) { telemetry.set_ready(ready); });
  } catch (const std::exception& e) {
    std::cerr << "leadsync-producer: " << leadsync::common::redact(e.what()) << "\n";
    return leadsync::common::kExitUsage;
  }

  // The service: ServiceSchedule (common/runs_schedule.h) says which sources to start now — a
  // queued run (a trigger) at the next tick, a source whose schedule came due unless it is paused —
  // and announces this process, so that a trigger can tell whether anyone will start its run.
  std::map<std::string, std::chrono::milliseconds> intervals;
  std::map<std::string, const leadsync::common::SourceConfig*> by_name;
  for (const auto* s : sources) {
    intervals[s->name] = s->schedule;
    by_name[s->name] = s;
  }
  telemetry.set_stall_after(std::chrono::minutes(30));
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<leadsync::common::RunStore> store;
  std::unique_ptr<leadsync::common::ServiceSchedule> schedule;
  while (!g_stop.load()) {
    telemetry.heartbeat();
    try {
      if (!schedule) {
        conn = leadsync::common::pg_connect(config.postgres.url, "leadsync-producer-schedule");
        store = std::make_unique<leadsync::common::RunStore>(*conn, config.runs.heartbeat_interval);
        schedule = std::make_unique<leadsync::common::ServiceSchedule>(
            *store, leadsync::common::service_instance_name(), intervals);
      }
      for (const auto& name : schedule->due_now()) {
        if (g_stop.load()) break;
        const auto report = runner.run(*by_name.at(name));
        print_report(report);
        if (report.status == leadsync::common::RunStatus::kFailed) {
          spdlog::error("source {}: run failed: {}", name, leadsync::common::redact(report.message));
        }
        // A paused run is unfinished work: once resumed, the source is due at once and continues it.
        if (report.paused) {
          schedule->due_again(name);
        } else {
          schedule->ran(name);
        }
        telemetry.heartbeat();
      }
    } catch (const std::exception& e) {
      // PostgreSQL unreachable: try again at the next tick with a new connection.
      spdlog::error("leadsync-producer: scheduling: {}", leadsync::common::redact(e.what()));
      schedule.reset();
      store.reset();
      conn.reset();
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  spdlog::info("leadsync-producer: stopping");
  return 0;
}
