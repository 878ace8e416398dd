// The PostgreSQL apply target (design.md §4): one transaction per batch; identities resolved
// (R1), the batch collapsed to the newest event per key and merged with the version guard; a
// record that fails is isolated by splitting under savepoints, so the rest still commits; run
// statistics written in the same transaction, with the next Kafka offset applied per partition
// (leadsync.applied_offsets): a batch read again after a crash between the database commit and the
// offset commit is skipped, neither applied nor counted twice; and the run whose last event it
// applied is completed there (common::close_applied). A lost connection or a statement that fails for
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
  // Counts the dead letters and stores the offsets of the partitions that had failed records, in
  // one transaction (reliable: throws TargetUnavailable, and is called again, when it cannot).
  void settle(const RunCounts& dead_lettered, const std::map<TopicPartition, int64_t>& rewind) override;

 private:
  // The calls into validation, the collapse, the statement builder and the identity resolver.
  void validate(const std::vector<Record*>& records) const;
  void resolve_identities(pqxx::transaction_base& tx, const std::vector<Record*>& records);
  const common::ChangeEvent& applied_event(const Record* r) const;  // the re-keyed copy, or the event
  void apply_newest(pqxx::dbtransaction& tx, const std::vector<Record*>& records, RunCounts& per_run);
  void apply_one_entity(pqxx::dbtransaction& tx, const EntityApplier& applier, const std::vector<Record*>& records,
                        RunCounts& per_run);

  // The batch's transaction: skips what an earlier transaction applied, applies the rest, writes
  // the run statistics and the partitions' offsets, completes finished runs. `todo`: the records
  // not skipped.
  RunCounts apply_batch(const std::vector<Record*>& records, std::vector<Record*>& todo);
  // The records at or after each partition's stored next offset (the others: failure cleared, left
  // out); locks the partitions' rows until the commit, so that two workers never both apply one.
  std::vector<Record*> skip_applied(pqxx::transaction_base& tx, const std::vector<Record*>& records);
  // Per partition: the offset after its last record, or its first failed record's (whose forward
  // comes first: the rest goes to pending_, stored by settle()).
  std::map<TopicPartition, int64_t> done_offsets(const std::vector<Record*>& records);
  void write_offsets(pqxx::transaction_base& tx, const std::map<TopicPartition, int64_t>& next);
  void after_batch_commit();
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
  std::map<TopicPartition, int64_t> pending_;  // next offsets settle() stores, once failures are forwarded
  // Test hook (LEADSYNC_TEST_CRASH_AFTER_BATCHES=N): the process is killed right after the database
  // commit of its Nth batch, before the batch's Kafka offsets are stored. 0: off.
  long crash_after_batches_ = 0;
  long batches_committed_ = 0;
};

}  // namespace leadsync::workers
