// leadsyncctl cleanup (issue 11 item 6): leadsync's history tables grow with every change, run and
// repair. cleanup deletes what is older than each table's retention, oldest first, in batches of
// its own transaction each, so it never holds long locks or builds one huge transaction.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::ctl {

struct Retention {
  int field_changes_days = 400;   // the audit (R6, leadsync.record_changes): as long as your audit policy says
  int run_history_days = 90;      // run_apply_stats and run_errors
  int backups_days = 30;          // repair backups: a rollback is possible while they are kept
  int64_t batch = 10000;          // rows per delete transaction
};

struct CleanupResult {
  std::string table;
  int days = 0;
  int64_t deleted = 0;  // with a dry run: what would be deleted
};

enum class CleanupMode { kDelete, kDryRun };

std::vector<CleanupResult> cleanup(const common::Config& config, const Retention& retention, CleanupMode mode);

}  // namespace leadsync::ctl
