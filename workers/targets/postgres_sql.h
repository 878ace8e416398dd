// The merge statement that applies a batch of one entity in one round trip (design.md §4): the batch
// is bound as one text[] per column (in binary) and unnested into a staging CTE, then merged by one
// guarded INSERT … ON CONFLICT … DO UPDATE … WHERE <newer>, so an older or replayed event never
// overwrites newer data. Audit rows and the counts per run come from the same statement.
//
// Built once per entity, without a connection, so that the text can be checked by unit tests.
#pragma once

#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::workers {

// What one bound text[] parameter holds, one element per staged event. The statement binds them in
// the order of MergeStatement::columns, as $1, $2, …
enum class StagedColumn {
  kKey,
  kField,          // MergeStatement::columns_field[i] names which field
  kVersion,
  kDeleted,
  kSource,
  kOrigin,
  kEventId,
  kRunId,
  kFieldPresence,  // partial entities: '1'/'0' per field in declaration order
};

struct MergeStatement {
  std::string sql;
  std::vector<StagedColumn> columns;
  std::vector<int> column_field;  // per column: the field's index for kField, else -1
  bool binds_entity_name = false;  // one more text parameter after the columns (audit rows name it)
};

// Builds the statement for `entity` in `schema`.
MergeStatement merge_statement(const std::string& schema, const common::EntityConfig& entity);

}  // namespace leadsync::workers
