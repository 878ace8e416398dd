// leadsyncctl: the operator's command line (interfaces.md "Executables").
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

#include "common/cli.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/kafka_admin.h"
#include "common/pg.h"
#include "common/redact.h"
#include "common/run_status.h"
#include "common/runs.h"
#include "common/runs_json.h"
#include "common/schema.h"
#include "ctl/dlq.h"
#include "ctl/exporter.h"
#include "ctl/runs.h"
#include "ctl/verify.h"
#include "ctl/verify_metrics.h"

namespace {

using leadsync::common::Config;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop.store(true); }

constexpr int kOk = leadsync::common::kExitOk, kFailed = leadsync::common::kExitFailed,
              kUsage = leadsync::common::kExitUsage;
// A refusal by the run store (already running, already queued, paused, nothing to cancel).
constexpr int kConflict = 3;

int cmd_migrate(const Config& config) {
  auto conn = leadsync::common::pg_connect(config.postgres.url, "leadsyncctl");
  for (const auto& line : leadsync::common::migrate(*conn, config)) std::cout << line << "\n";
  return kOk;
}

int cmd_topics(const Config& config) {
  for (const auto& line : leadsync::common::create_topics(config.kafka, leadsync::common::leadsync_topics(config.kafka))) {
    std::cout << line << "\n";
  }
  return kOk;
}

using leadsync::common::AppliedCounts;

AppliedCounts applied_for(pqxx::work& tx, const std::string& run_id) {
  const auto r = tx.exec_params1(
      "SELECT coalesce(sum(inserted),0), coalesce(sum(updated),0), coalesce(sum(deleted),0), "
      "coalesce(sum(unchanged),0), coalesce(sum(stale),0), coalesce(sum(failed),0) "
      "FROM leadsync.run_apply_stats WHERE run_id = $1",
      run_id);
  return {r[0].as<int64_t>(), r[1].as<int64_t>(), r[2].as<int64_t>(),
          r[3].as<int64_t>(), r[4].as<int64_t>(), r[5].as<int64_t>()};
}

nlohmann::json run_json(const pqxx::row& r, const AppliedCounts& a) {
  auto text = [](const pqxx::field& f) { return f.is_null() ? std::string() : f.as<std::string>(); };
  return {{"run_id", text(r["run_id"])},
          {"source", text(r["source"])},
          {"status", text(r["status"])},
          {"started_at", text(r["started_at"])},
          {"finished_at", text(r["finished_at"])},
          {"rows_read", r["rows_read"].as<int64_t>()},
          {"progress_percent", r["progress_percent"].is_null() ? 0.0 : r["progress_percent"].as<double>()},
          {"events_published", r["events_published"].as<int64_t>()},
          {"source_new", r["new_records"].as<int64_t>()},
          {"source_changed", r["changed_records"].as<int64_t>()},
          {"source_deleted", r["deleted_records"].as<int64_t>()},
          {"source_unchanged", r["unchanged_records"].as<int64_t>()},
          {"source_failed", r["failed_records"].as<int64_t>()},
          {"applied", leadsync::common::applied_to_json(a, r["events_published"].as<int64_t>())},
          {"message", leadsync::common::redact(text(r["message"]))}};
}

const char* kRunColumns =
    "run_id, source, status, started_at::text, finished_at::text, rows_read, progress_percent, events_published, "
    "new_records, changed_records, deleted_records, unchanged_records, failed_records, message";

int cmd_status(const Config& config, const std::string& source, bool json) {
  auto conn = leadsync::common::pg_connect(config.postgres.url, "leadsyncctl");
  pqxx::work tx(*conn);
  int shown = 0;
  for (const auto& s : config.sources) {
    if (!source.empty() && s.name != source) continue;
    ++shown;
    const auto rows = tx.exec_params(std::string("SELECT ") + kRunColumns +
                                         " FROM leadsync.sync_runs WHERE source = $1 ORDER BY created_at DESC LIMIT 1",
                                     s.name);
    if (rows.empty()) {
      if (json) {
        std::cout << nlohmann::json{{"source", s.name}, {"status", "never run"}}.dump() << "\n";
      } else {
        std::cout << s.name << ": never run\n";
      }
      continue;
    }
    const auto j = run_json(rows[0], applied_for(tx, rows[0]["run_id"].as<std::string>()));
    if (json) {
      std::cout << j.dump() << "\n";
      continue;
    }
    std::cout << s.name << ": " << j["status"].get<std::string>() << " (run " << j["run_id"].get<std::string>()
              << ", started " << j["started_at"].get<std::string>() << ")\n"
              << "  source: " << j["rows_read"] << " rows read, " << j["source_new"] << " new, " << j["source_changed"]
              << " changed, " << j["source_deleted"] << " deleted, " << j["source_unchanged"] << " unchanged, "
              << j["source_failed"] << " rejected; " << j["events_published"] << " events published\n"
              << "  applied: " << j["applied"]["inserted"] << " inserted, " << j["applied"]["updated"] << " updated, "
              << j["applied"]["deleted"] << " deleted, " << j["applied"]["unchanged"] << " unchanged, "
              << j["applied"]["stale"] << " stale, " << j["applied"]["dead_lettered"] << " dead-lettered, "
              << j["applied"]["pending"] << " pending\n";
    if (!j["message"].get<std::string>().empty()) std::cout << "  message: " << j["message"].get<std::string>() << "\n";
  }
  if (!source.empty() && shown == 0) throw leadsync::common::ConfigError("no source named '" + source + "'");
  return kOk;
}

// Waits until every event of every recent run of the source has been applied or dead-lettered
// (not only the latest run's: an earlier run's events may still be on their way), then reports
// the latest run.
int cmd_wait(const Config& config, const std::string& source, int timeout_s) {
  if (!config.source(source)) throw leadsync::common::ConfigError("no source named '" + source + "'");
  auto conn = leadsync::common::pg_connect(config.postgres.url, "leadsyncctl");
  leadsync::common::RunStore store(*conn, leadsync::common::kDefaultHeartbeatInterval);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  std::string waiting_for;
  for (;;) {
    const auto pending = store.unapplied(source);
    {
      pqxx::work tx(*conn);
      const auto rows = tx.exec_params(std::string("SELECT ") + kRunColumns +
                                           " FROM leadsync.sync_runs WHERE source = $1 ORDER BY created_at DESC LIMIT 1",
                                       source);
      if (rows.empty()) {
        std::cerr << "leadsyncctl wait: source " << source << " has never run\n";
        return kFailed;
      }
      const auto status = leadsync::common::parse_run_status(rows[0]["status"].as<std::string>());
      const auto applied = applied_for(tx, rows[0]["run_id"].as<std::string>());
      if (status == leadsync::common::RunStatus::kFailed) {
        std::cout << run_json(rows[0], applied).dump() << "\n";
        return kFailed;
      }
      if (pending.empty()) {
        std::cout << run_json(rows[0], applied).dump() << "\n";
        return status == leadsync::common::RunStatus::kCompleted ? kOk : kFailed;
      }
      waiting_for = pending.front().run_id + " (" + std::string(leadsync::common::run_status_name(pending.front().status)) +
                    ", " + std::to_string(pending.front().applied.total()) + " of " +
                    std::to_string(pending.front().counters.events_published) + " events applied)";
    }
    if (std::chrono::steady_clock::now() > deadline) {
      std::cerr << "leadsyncctl wait: the runs of " << source << " are not fully applied after " << timeout_s
                << " s; waiting for run " << waiting_for << "\n";
      return kFailed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

int cmd_verify(const Config& config, const std::string& source, const std::string& metrics_file) {
  bool drift = false;
  int shown = 0;
  prometheus::Registry registry;
  leadsync::ctl::VerifyMetrics metrics(registry);
  for (const auto& s : config.sources) {
    if (!source.empty() && s.name != source) continue;
    ++shown;
    const auto report = leadsync::ctl::verify_source(config, s);
    std::cout << leadsync::ctl::format_report(report);
    drift = drift || report.drift();
    metrics.record(report, std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  }
  if (!source.empty() && shown == 0) throw leadsync::common::ConfigError("no source named '" + source + "'");
  if (!metrics_file.empty()) leadsync::ctl::write_textfile(registry, metrics_file);
  return drift ? kFailed : kOk;
}

}  // namespace

int main(int argc, char** argv) {
  leadsync::common::CommandLine cli("leadsyncctl", "leadsyncctl: operate leadsync (schema, topics, runs, verification)",
                                    "warn");
  auto& app = cli.app();
  app.require_subcommand(1);

  auto* migrate = app.add_subcommand("migrate", "create or upgrade leadsync's schema and the entity tables");
  auto* topics = app.add_subcommand("topics", "create the main, retry and dead-letter topics");
  std::string source;
  bool json = false;
  auto* status = app.add_subcommand("status", "the latest run of each source (or of SOURCE)");
  status->add_option("source", source, "source name");
  status->add_flag("--json", json, "one JSON object per source");
  auto* verify = app.add_subcommand("verify", "compare a source with PostgreSQL field by field; exit 1 on drift");
  verify->add_option("source", source, "source name (default: every source)");
  std::string verify_metrics_file;
  verify->add_option("--metrics-file", verify_metrics_file,
                     "also write the result as Prometheus metrics to this file (node_exporter textfile collector)");
  int timeout_s = 120;
  auto* wait = app.add_subcommand("wait", "wait until every recent run of SOURCE is fully applied");
  wait->add_option("source", source, "source name")->required();
  wait->add_option("--timeout", timeout_s, "seconds (default 120)");

  int exporter_interval_s = 15;
  auto* exporter = app.add_subcommand(
      "exporter", "serve the consumer group's lag, committed position and members on --metrics-address until SIGTERM");
  exporter->add_option("--interval", exporter_interval_s, "seconds between samples (default 15)")
      ->check(CLI::Range(1, 3600));
  leadsync::ctl::RunCommands run_commands(app);

  auto* dlq = app.add_subcommand("dlq", "dead letters: list them, replay them to the main topic");
  dlq->require_subcommand(1);
  leadsync::ctl::DlqFilter filter;
  int limit = 100;
  bool dry_run = false;
  auto* dlq_list = dlq->add_subcommand("list", "show dead letters with their error context, oldest first");
  dlq_list->add_option("--limit", limit, "show at most this many (default 100)");
  dlq_list->add_flag("--json", json, "one JSON object per dead letter");
  auto* dlq_replay = dlq->add_subcommand("replay", "send dead letters back through the main topic");
  dlq_replay->add_flag("--dry-run", dry_run, "only list what would be replayed");
  for (auto* sub : {dlq_list, dlq_replay}) {
    sub->add_option("--key", filter.key, "only this record (ENTITY/KEY)");
    sub->add_option("--error-class", filter.error_class, "only permanent or retryable")
        ->check(CLI::IsMember({"permanent", "retryable"}));
  }

  if (const auto exit_code = cli.parse(argc, argv)) return *exit_code;
  leadsync::common::Telemetry telemetry("leadsyncctl");
  const auto loaded = cli.start(telemetry);
  if (!loaded) return kUsage;
  const auto& config = *loaded;
  try {
    if (*migrate) return cmd_migrate(config);
    if (*topics) return cmd_topics(config);
    if (*status) return cmd_status(config, source, json);
    if (*verify) return cmd_verify(config, source, verify_metrics_file);
    if (*wait) return cmd_wait(config, source, timeout_s);
    if (*exporter) {
      if (cli.options().metrics_address.empty()) {
        throw leadsync::common::ConfigError("exporter: --metrics-address HOST:PORT is required");
      }
      std::signal(SIGTERM, on_signal);
      std::signal(SIGINT, on_signal);
      return leadsync::ctl::run_exporter(config, telemetry, std::chrono::seconds(exporter_interval_s), g_stop);
    }
    if (const auto rc = run_commands.dispatch(config)) return *rc;
    if (*dlq_list) {
      leadsync::ctl::dlq_list(config, filter, limit, json);
      return kOk;
    }
    if (*dlq_replay) {
      leadsync::ctl::dlq_replay(config, filter, dry_run);
      return kOk;
    }
  } catch (const leadsync::common::RunConflict& e) {
    std::cerr << "leadsyncctl: " << e.what() << "\n";
    return kConflict;
  } catch (const leadsync::common::ConfigError& e) {
    std::cerr << "leadsyncctl: " << leadsync::common::redact(e.what()) << "\n";
    return kUsage;
  } catch (const std::exception& e) {
    std::cerr << "leadsyncctl: " << leadsync::common::redact(e.what()) << "\n";
    return kFailed;
  }
  return kUsage;
}
