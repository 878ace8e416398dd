// The PostgreSQL apply target (design.md §4): one transaction per batch; identities resolved
// (R1), the batch collapsed to the newest event per key and merged with the version guard; a
// record that fails is isolated by splitting under savepoints, so the rest still commits; run
// statistics written in the same transaction. A lost connection or a statement that fails for
// the deployment (schema, privileges) makes the target unavailable instead of failing records.
#pragma once

#include <pqxx/pqxx>

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "workers/apply_target.h"
#include "workers/metrics.h"
#include "workers/targets/entity_applier.h"
#include "workers/targets/identity.h"

namespace leadsync::workers {

class PostgresTarget : public ApplyTarget {
 public:
  PostgresTarget(const common::Config& config, WorkerMetrics& metrics);

  bool connect() override;
  bool available() const override { return up_; }
  RunCounts apply(const std::vector<Record*>& records) override;
  void count_dead_letters(const RunCounts& per_run) override;

 private:
  // The calls into validation, the collapse, the statement builder and the identity resolver.
  void validate(const std::vector<Record*>& records) const;
  void resolve_identities(pqxx::transaction_base& tx, const std::vector<Record*>& records);
  const common::ChangeEvent& applied_event(const Record* r) const;  // the re-keyed copy, or the event
  void apply_newest(pqxx::dbtransaction& tx, const std::vector<Record*>& records, RunCounts& per_run);
  void apply_one_entity(pqxx::dbtransaction& tx, const EntityApplier& applier, const std::vector<Record*>& records,
                        RunCounts& per_run);

  RunCounts apply_in_one_transaction(const std::vector<Record*>& records);
  RunCounts apply_one_by_one(const std::vector<Record*>& records);
  void apply_isolating(pqxx::dbtransaction& tx, const EntityApplier& applier, std::vector<Record*>& records,
                       RunCounts& per_run);
  static void write_run_stats(pqxx::transaction_base& tx, const RunCounts& per_run);
  // Throws TargetUnavailable: an outage when the connection is gone, a misfit otherwise.
  [[noreturn]] void unavailable(const std::exception& e);
  void set_up(bool up);

  const common::Config& config_;
  WorkerMetrics& metrics_;
  std::unique_ptr<pqxx::connection> conn_;
  std::map<std::string, EntityApplier> appliers_;
  std::map<std::string, IdentityResolver> resolvers_;
  std::unordered_map<const Record*, common::ChangeEvent> rekeyed_;  // this batch's events with a resolved key
  bool up_ = false;
};

}  // namespace leadsync::workers
