// leadsyncctl repair and rollback (design.md §8, R7).
//
// repair: verify finds the drifted records; their rows are backed up into leadsync.backups (each
// column as text); then the source's current image of exactly those records (a DELETE for a row the
// source no longer has) is published through the normal path — Kafka, the workers, the version
// guard — as a run with trigger `repair`, stamped with a version above the rows' own and above every
// version the source stamped before, so that a source whose record version did not move is not
// ignored as stale. Nothing drifted: nothing is backed up or published (repair is idempotent).
//
// rollback: writes the backed-up values back into the table in one transaction, under a new
// _version (the guard holds afterwards: an event older than the rollback is stale).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "ctl/verify.h"

namespace leadsync::ctl {

enum class RepairMode { kApply, kDryRun };

struct RepairOptions {
  std::set<std::string> keys;       // only these records (empty: every drifted one)
  std::vector<std::string> fields;  // only records whose values differ in these fields (empty: every drift)
  RepairMode mode = RepairMode::kApply;
};

struct RepairResult {
  VerifyReport before;
  std::string run_id;     // empty when nothing was published
  std::string backup_id;  // empty when nothing was backed up
  int64_t version = 0;
  int64_t upserts = 0;  // records re-published from the source's image
  int64_t deletes = 0;  // rows the source no longer has
  std::vector<std::string> keys;  // every repaired key, sorted
};

RepairResult repair_source(const common::Config& config, const common::SourceConfig& source,
                           const RepairOptions& options);
std::string format_repair(const RepairResult& r, RepairMode mode);

struct RestoredRow {
  std::string key;
  std::vector<std::string> fields;  // fields whose value changed back
  bool removed = false;             // the row did not exist before the repair and was removed
};

struct RollbackResult {
  std::string backup_id;
  std::string entity;
  int64_t version = 0;
  std::string previously_restored_at;  // when this backup was rolled back before ("" if never)
  std::vector<RestoredRow> rows;
};

RollbackResult rollback_backup(const common::Config& config, const std::string& backup_id);
std::string format_rollback(const RollbackResult& r);

}  // namespace leadsync::ctl
