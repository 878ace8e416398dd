// Applies change events to an entity's table in one statement per batch (design.md §4): the
// batch is bound as arrays and unnested into a staging CTE, then merged by one guarded
// INSERT … ON CONFLICT … DO UPDATE … WHERE target._version < EXCLUDED._version, so an older or
// replayed event never overwrites newer data. Audit rows and the counts come from the same
// statement.
#pragma once

#include <pqxx/pqxx>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"

namespace leadsync::workers {

struct ApplyCounts {
  int64_t inserted = 0;
  int64_t updated = 0;
  int64_t deleted = 0;
  int64_t unchanged = 0;  // newer version, same content: only _version moved
  int64_t stale = 0;      // older than or equal to what the table has: ignored
  int64_t failed = 0;     // dead-lettered

  ApplyCounts& operator+=(const ApplyCounts& o);
  int64_t total() const { return inserted + updated + deleted + unchanged + stale + failed; }
};

// Collapses a batch to the newest event per (entity, key), as the worker does before applying:
// PostgreSQL cannot touch one row twice in one statement, and the older events would lose to the
// version guard anyway. On equal versions the later event in the batch wins. Returns, per entity,
// the indexes into `events` to apply; every other index is counted as stale in `stale_per_run`.
std::map<std::string, std::vector<std::size_t>> newest_per_key(
    const std::vector<const common::ChangeEvent*>& events, std::map<std::string, ApplyCounts>& stale_per_run);

// Checks an event against its entity before it is applied: a violation is permanent (DLQ).
// Returns an empty string when the event fits; otherwise what is wrong, naming the field.
std::string validate_event(const common::Config& config, const common::ChangeEvent& event);

class EntityApplier {
 public:
  EntityApplier(const common::Config& config, const common::EntityConfig& entity, pqxx::connection_base& conn);

  // Applies `events` (at most one per key, already validated) inside `tx`; returns counts per
  // run_id ("" for events without one).
  std::map<std::string, ApplyCounts> apply(pqxx::transaction_base& tx,
                                           const std::vector<const common::ChangeEvent*>& events) const;

 private:
  const common::EntityConfig& entity_;
  std::string sql_;
};

// The text form of a value for a text[] array literal element of its field's column, or nullopt
// for SQL NULL. Exposed for tests.
std::optional<std::string> sql_text(const common::FieldConfig& field, const common::Value& value);

}  // namespace leadsync::workers
