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
  // column an array as common::BinaryArray writes it, then the entity's name. Typed (of
  // statement().column_types, for statement().sql) when every value has its field's kind; else
  // every column a text[] of sql_text() (for statement().text_sql). Exposed for tests.
  struct Bound {
    std::vector<std::string> values;
    bool typed = false;
  };
  Bound parameters(const std::vector<const common::ChangeEvent*>& events) const;
  // The text way alone, whatever the values' kinds. Exposed for tests.
  std::vector<std::string> text_parameters(const std::vector<const common::ChangeEvent*>& events) const;
  const MergeStatement& statement() const { return statement_; }

 private:
  // Stages `events` typed or as text; typed, nullopt at the first value of another kind than its field's.
  std::optional<std::vector<std::string>> stage(const std::vector<const common::ChangeEvent*>& events,
                                                bool typed) const;

  const common::EntityConfig& entity_;
  MergeStatement statement_;
  std::string prepared_name_;       // the merge statement's name on a connection (typed)
  std::string text_prepared_name_;  // and its all-text variant's
};

// The text form of a value for a text[] array literal element of its field's column, or nullopt
// for SQL NULL. Exposed for tests.
std::optional<std::string> sql_text(const common::FieldConfig& field, const common::Value& value);

}  // namespace leadsync::workers
