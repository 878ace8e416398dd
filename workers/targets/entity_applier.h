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

  // Whether every value of `events` has its field's kind, so that the batch can be bound typed
  // (statement().sql); else it is bound as text (statement().text_sql).
  bool fits_typed(const std::vector<const common::ChangeEvent*>& events) const;
  // The bound parameters for `events`, in the statement's order, in binary format: each staged
  // column an array as common::BinaryArray writes it (typed: of statement().column_types; else a
  // text[] of sql_text()), then the entity's name. Exposed for tests.
  std::vector<std::string> parameters(const std::vector<const common::ChangeEvent*>& events, bool typed) const;
  const MergeStatement& statement() const { return statement_; }

 private:
  const common::EntityConfig& entity_;
  MergeStatement statement_;
  std::string prepared_name_;       // the merge statement's name on a connection (typed)
  std::string text_prepared_name_;  // and its all-text variant's
};

// The text form of a value for a text[] array literal element of its field's column, or nullopt
// for SQL NULL. Exposed for tests.
std::optional<std::string> sql_text(const common::FieldConfig& field, const common::Value& value);

}  // namespace leadsync::workers
