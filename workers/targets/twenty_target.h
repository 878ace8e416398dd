// The CRM apply target of the reverse direction (design.md §9, issue 9): applies PostgreSQL's
// changes to Twenty behind the same worker (consume loop, retry tiers, DLQ, offsets after apply).
//  - a record with a CRM id (written back earlier, or the key of a record that came from the CRM)
//    is updated by PATCH with the fields PostgreSQL wins (twenty_conflicts.h); nothing when none;
//  - a record without one is created in batches (POST /rest/batch/<object>, <= 60) under the id
//    crm_id_for() derives from its key, then that id is written back into reverse.id_field. A
//    replayed create finds its record by that id and becomes an update: never a duplicate; the
//    id is linked to the row in leadsync.identities before the create, so that the inbound
//    direction applies the CRM's copy of the record to that row (workers/targets/identity.h);
//  - fields the CRM wins that PostgreSQL holds differently are written back into PostgreSQL, so both
//    sides converge; every decision goes to leadsync.conflict_decisions with both values;
//  - PostgreSQL writes run in a leadsync transaction (SET LOCAL leadsync.origin): never captured.
// A 4xx for a record fails that record (DLQ); 429/5xx after the client's retries, a transport error
// or PostgreSQL going away make the target unavailable: the batch is tried again, and re-deciding
// it against the CRM's current state makes the replay harmless.
#pragma once

#include <pqxx/pqxx>
#include <prometheus/registry.h>

#include <memory>
#include <optional>

#include "common/config.h"
#include "workers/apply_target.h"
#include "workers/metrics.h"
#include "workers/targets/twenty_client.h"
#include "workers/targets/twenty_conflicts.h"

namespace leadsync::workers {

// The sink's own metrics (common/metric_names.h) beside the worker's.
struct CrmSinkMetrics {
  explicit CrmSinkMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& writes;     // op
  prometheus::Family<prometheus::Counter>& decisions;  // winner, rule
};

class TwentyTarget : public ApplyTarget {
 public:
  // `config` is the whole configuration (reverse: and postgres:).
  TwentyTarget(const common::Config& config, WorkerMetrics& metrics, prometheus::Registry& registry,
               common::HttpSleep sleep = nullptr);

  bool connect() override;
  bool available() const override { return up_; }
  RunCounts apply(const std::vector<Record*>& records) override;
  void count_dead_letters(const RunCounts&) override {}  // reverse events belong to no run

 private:
  struct Pending;  // one record's plan within a batch
  void link_creates(const std::vector<Pending>& creates);
  void apply_creates(std::vector<Pending>& creates, ApplyCounts& counts);
  void apply_updates(std::vector<Pending>& updates, const std::map<std::string, nlohmann::json>& held,
                     ApplyCounts& counts);
  void write_postgres(const std::vector<Pending>& done);
  [[noreturn]] void unavailable(const std::string& what);

  const common::Config& config_;
  const common::ReverseConfig& reverse_;
  WorkerMetrics& metrics_;
  CrmSinkMetrics sink_metrics_;
  common::HttpSleep sleep_;
  std::optional<TwentyClient> client_;
  std::unique_ptr<pqxx::connection> conn_;
  bool up_ = false;
};

}  // namespace leadsync::workers
