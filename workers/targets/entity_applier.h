// Runs an entity's merge statement (postgres_sql.h) for a batch of events: binds each event as one
// element of every staged column and reads back the counts per run.
#pragma once

#include <pqxx/pqxx>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"
#include "workers/apply_counts.h"
#include "workers/targets/postgres_sql.h"

namespace leadsync::workers {

class EntityApplier {
 public:
  EntityApplier(const common::Config& config, const common::EntityConfig& entity);

  // Applies `events` (at most one per key, already validated) inside `tx`; returns counts per
  // run_id ("" for events without one).
  std::map<std::string, ApplyCounts> apply(pqxx::transaction_base& tx,
                                           const std::vector<const common::ChangeEvent*>& events) const;

  // The bound parameters for `events`, in the statement's order, in binary format: each staged
  // column a text[] as common::BinaryTextArray writes it, then the entity's name. Exposed for tests.
  std::vector<std::string> parameters(const std::vector<const common::ChangeEvent*>& events) const;
  const MergeStatement& statement() const { return statement_; }

 private:
  const common::EntityConfig& entity_;
  MergeStatement statement_;
  std::string prepared_name_;  // the merge statement's name on a connection
};

// The text form of a value for a text[] array literal element of its field's column, or nullopt
// for SQL NULL. Exposed for tests.
std::optional<std::string> sql_text(const common::FieldConfig& field, const common::Value& value);

}  // namespace leadsync::workers
