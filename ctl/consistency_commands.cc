#include "ctl/consistency_commands.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>

#include "common/cli.h"
#include "common/errors.h"
#include "ctl/explain.h"
#include "ctl/plan.h"
#include "ctl/repair.h"
#include "ctl/verify.h"
#include "ctl/verify_metrics.h"

namespace leadsync::ctl {

ConsistencyCommands::ConsistencyCommands(CLI::App& app) {
  verify_ = app.add_subcommand("verify", "compare a source with PostgreSQL field by field; exit 1 on drift");
  verify_->add_option("source", source_, "source name (default: every source)");
  verify_->add_option("--fields", fields_, "compare only these fields (a,b,...)")->delimiter(',');
  verify_->add_option("--key", keys_, "only this record (repeatable)");
  verify_->add_flag("--json", json_, "one JSON object per source");
  verify_->add_option("--sample", samples_, "sample keys shown per finding (default 5)");
  verify_->add_option("--metrics-file", metrics_file_,
                      "also write the result as Prometheus metrics to this file (node_exporter textfile collector)");

  repair_ = app.add_subcommand("repair",
                               "back up the drifted records' rows, then re-publish the source's image of exactly "
                               "those records (a run with trigger repair)");
  repair_->add_option("source", source_, "source name")->required();
  repair_->add_option("--key", keys_, "only this record (repeatable)");
  repair_->add_option("--fields", fields_, "only records drifted in these fields (a,b,...)")->delimiter(',');
  repair_->add_flag("--dry-run", dry_run_, "only show what would be repaired");

  rollback_ = app.add_subcommand("rollback", "restore the rows a repair backed up, byte for byte, under a new _version");
  rollback_->add_option("backup_id", backup_id_, "the backup id repair printed")->required();

  plan_ = app.add_subcommand("plan", "dry run: what the next run of SOURCE would insert, update and delete");
  plan_->add_option("source", source_, "source name")->required();
  plan_->add_flag("--json", json_, "one JSON object");
  plan_->add_option("--sample", samples_, "sample keys shown per line (default 5)");

  cleanup_ = app.add_subcommand("cleanup", "delete history older than its retention, in batches");
  cleanup_->add_option("--field-changes-days", retention_.field_changes_days, "keep the audit this long (default 400)")
      ->check(CLI::PositiveNumber);
  cleanup_->add_option("--run-history-days", retention_.run_history_days,
                       "keep run_apply_stats and run_errors this long (default 90)")
      ->check(CLI::PositiveNumber);
  cleanup_->add_option("--backups-days", retention_.backups_days, "keep repair backups this long (default 30)")
      ->check(CLI::PositiveNumber);
  cleanup_->add_option("--batch", retention_.batch, "rows per delete transaction (default 10000)")
      ->check(CLI::PositiveNumber);
  cleanup_->add_flag("--dry-run", dry_run_, "only count what would be deleted");

  explain_ = app.add_subcommand("explain", "one record across the sources, PostgreSQL, sync state, audit and dead letters");
  explain_->add_option("entity", entity_, "entity name")->required();
  explain_->add_option("key", key_, "the record's key (or a key linked to it)")->required();
  explain_->add_flag("--json", json_, "one JSON object");
}

std::optional<int> ConsistencyCommands::dispatch(const common::Config& config) {
  if (*verify_) return verify(config);
  if (*repair_) {
    const auto* source = config.source(source_);
    if (!source) throw common::ConfigError("no source named '" + source_ + "'");
    RepairOptions options;
    options.keys = {keys_.begin(), keys_.end()};
    options.fields = fields_;
    options.mode = dry_run_ ? RepairMode::kDryRun : RepairMode::kApply;
    std::cout << format_repair(repair_source(config, *source, options), options.mode);
    return common::kExitOk;
  }
  if (*plan_) {
    const auto* source = config.source(source_);
    if (!source) throw common::ConfigError("no source named '" + source_ + "'");
    const auto p = plan_source(config, *source, samples_);
    std::cout << (json_ ? plan_json(p, samples_) + "\n" : format_plan(p, samples_));
    return common::kExitOk;
  }
  if (*cleanup_) {
    const auto mode = dry_run_ ? CleanupMode::kDryRun : CleanupMode::kDelete;
    for (const auto& r : cleanup(config, retention_, mode)) {
      std::cout << r.table << ": " << r.deleted << " row(s) older than " << r.days << " days "
                << (mode == CleanupMode::kDryRun ? "would be deleted" : "deleted") << "\n";
    }
    return common::kExitOk;
  }
  if (*explain_) {
    const auto e = explain_record(config, entity_, key_);
    std::cout << (json_ ? e.dump() + "\n" : format_explain(e));
    return common::kExitOk;
  }
  if (*rollback_) {
    std::cout << format_rollback(rollback_backup(config, backup_id_));
    return common::kExitOk;
  }
  return std::nullopt;
}

int ConsistencyCommands::verify(const common::Config& config) {
  bool drift = false;
  int shown = 0;
  prometheus::Registry registry;
  VerifyMetrics metrics(registry);
  VerifyOptions options;
  options.fields = fields_;
  options.keys = {keys_.begin(), keys_.end()};
  options.samples = samples_;
  for (const auto& s : config.sources) {
    if (!source_.empty() && s.name != source_) continue;
    ++shown;
    const auto report = verify_source(config, s, options);
    std::cout << (json_ ? report_json(report) + "\n" : format_report(report));
    drift = drift || report.drift();
    std::vector<std::string> compared = fields_;
    if (compared.empty()) {
      for (const auto& f : config.entity(s.entity).fields) compared.push_back(f.name);
    }
    metrics.record(report, std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count(),
                   compared);
  }
  if (!source_.empty() && shown == 0) throw common::ConfigError("no source named '" + source_ + "'");
  if (!metrics_file_.empty()) write_textfile(registry, metrics_file_);
  return drift ? common::kExitFailed : common::kExitOk;
}

}  // namespace leadsync::ctl
