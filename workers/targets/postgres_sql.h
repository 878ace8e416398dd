// The merge statement that applies a batch of one entity in one round trip (design.md §4): the batch
// is bound as one array per column (in binary, typed where the field is) and unnested into a staging
// CTE, then merged by one guarded INSERT … ON CONFLICT … DO UPDATE … WHERE <newer>, so an older or
// replayed event never overwrites newer data. Audit rows and the counts per run come from the same
// statement.
//
// Built once per entity, without a connection, so that the text can be checked by unit tests.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::workers {

// What one bound array parameter holds, one element per staged event. The statement binds them in
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
  // The columns bound typed (column_types): a bigint[], timestamptz[], … per column as
  // common::BinaryArray writes it, which the server neither parses nor casts.
  std::string sql;
  // The same statement with every column bound as a text[] of the values' text (sql_text), for a
  // batch with a value of another kind than its field's type (a Firestore document may hold a
  // string where the field says int): the server then casts, and names the value it refuses.
  std::string text_sql;
  std::vector<StagedColumn> columns;
  std::vector<int> column_field;       // per column: the field's index for kField, else -1
  std::vector<uint32_t> column_types;  // per column: its element type in `sql` (common::BinaryArray::k…)
  bool binds_entity_name = false;  // one more text parameter after the columns (audit rows name it)
};

// Builds the statement for `entity` in `schema`.
MergeStatement merge_statement(const std::string& schema, const common::EntityConfig& entity);

}  // namespace leadsync::workers
