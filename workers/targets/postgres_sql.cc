#include "workers/targets/postgres_sql.h"

#include "common/pg.h"

namespace leadsync::workers {
namespace {

using common::FieldType;
using common::quote_ident;
using common::quote_literal;

// The element type of a staged column: a field's own type where it has a binary form the worker
// writes (common::BinaryArray), the record's version and tombstone flag likewise, text otherwise.
uint32_t staged_type(StagedColumn kind, const common::FieldConfig* field) {
  using common::BinaryArray;
  switch (kind) {
    case StagedColumn::kVersion: return BinaryArray::kInt8;
    case StagedColumn::kDeleted: return BinaryArray::kBool;
    case StagedColumn::kField:
      switch (field->type) {
        case FieldType::kInt: return BinaryArray::kInt8;
        case FieldType::kFloat: return BinaryArray::kFloat8;
        case FieldType::kBool: return BinaryArray::kBool;
        case FieldType::kTimestamp: return BinaryArray::kTimestamptz;
        case FieldType::kDate: return BinaryArray::kDate;
        case FieldType::kText:
        case FieldType::kTextList:
        case FieldType::kJson: return BinaryArray::kText;
      }
      return BinaryArray::kText;
    default: return BinaryArray::kText;
  }
}

const char* array_type(uint32_t element_type) {
  using common::BinaryArray;
  switch (element_type) {
    case BinaryArray::kInt8: return "bigint[]";
    case BinaryArray::kFloat8: return "double precision[]";
    case BinaryArray::kBool: return "boolean[]";
    case BinaryArray::kTimestamptz: return "timestamptz[]";
    case BinaryArray::kDate: return "date[]";
    default: return "text[]";
  }
}

// The staged batch: every bound column gets its parameter number here and nowhere else.
class Staging {
 public:
  explicit Staging(MergeStatement& out) : out_(out) {}

  // Binds one more column; returns how the staging CTE reads it.
  std::string bind(StagedColumn kind, const common::FieldConfig* field = nullptr, int index = -1) {
    out_.columns.push_back(kind);
    out_.column_field.push_back(index);
    out_.column_types.push_back(staged_type(kind, field));
    return "s.c" + std::to_string(out_.columns.size());
  }
  // The scalar parameter after the columns.
  std::string entity_name() {
    out_.binds_entity_name = true;
    return "$" + std::to_string(out_.columns.size() + 1);
  }
  // Typed: each column bound as its element type's array; else every one as a text[].
  std::string from(bool typed) const {
    std::string args, names;
    for (std::size_t i = 1; i <= out_.columns.size(); ++i) {
      args += (i > 1 ? ", $" : "$") + std::to_string(i) + "::" +
              array_type(typed ? out_.column_types[i - 1] : common::BinaryArray::kText);
      names += (i > 1 ? ", c" : "c") + std::to_string(i);
    }
    return "unnest(" + args + ") AS s(" + names + ")";
  }

 private:
  MergeStatement& out_;
};

std::string joined(const std::vector<std::string>& parts, const std::string& prefix, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + prefix + p;
  return out;
}

// The tie rule (collapse.h newer_than): versions first, then event ids. A row written before
// leadsync kept _event_id has none, and loses every tie.
const std::string kRowIsOlder = "(t._version, coalesce(t._event_id, '')) < (EXCLUDED._version, EXCLUDED._event_id)";

// How the ON CONFLICT branch treats an existing row: one assignment per field, the bookkeeping
// assignments, and the guard that decides whether the row moves at all.
struct ConflictRules {
  std::vector<std::string> field_sets;  // per field, in declaration order
  std::string record_sets;
  std::string guard;
};

// Full images: the record-level version guard (design.md §4). A tombstone keeps the record's last
// values; only an upsert changes them.
ConflictRules full_rules(const common::EntityConfig& entity) {
  ConflictRules r;
  for (const auto& f : entity.fields) {
    const auto c = quote_ident(f.name);
    // A write-back field (the CRM id of a record created here) or a computed one is no source's: a
    // full image does not carry it and must not clear it.
    // The producer fills rules fields (scores, segments) like source fields; the others stay as they are.
    const bool keep = f.role == common::FieldRole::kWriteBack || f.role == common::FieldRole::kComputed;
    r.field_sets.push_back(c + " = CASE WHEN " + (keep ? std::string("true") : "EXCLUDED._deleted") + " THEN t." + c +
                           " ELSE EXCLUDED." + c + " END");
  }
  r.record_sets =
      "_version = EXCLUDED._version, _event_id = EXCLUDED._event_id, _deleted = EXCLUDED._deleted, "
      "_source = EXCLUDED._source, _origin = EXCLUDED._origin, _synced_at = EXCLUDED._synced_at";
  r.guard = kRowIsOlder;
  return r;
}

// Partial events: each field is guarded by its own [version, event id] in _field_versions. An
// event newer than the record moves the record's bookkeeping (_version, _source, _origin, …); an
// older one that wins a field changes only that field. A tombstone raises every field's version
// (also when it arrives after a newer event), so that no older event writes a field after it.
ConflictRules partial_rules(const common::EntityConfig& entity) {
  const std::string event_at = "jsonb_build_array(EXCLUDED._version, EXCLUDED._event_id)";
  const std::string tombstone_at = "jsonb_build_array(t._version, coalesce(t._event_id, ''))";
  ConflictRules r;
  std::vector<std::string> wins, versions, incomplete, raised;
  for (const auto& f : entity.fields) {
    const auto c = quote_ident(f.name);
    const auto name = quote_literal(f.name);
    const auto offered = "EXCLUDED._field_versions->" + name;
    const auto held = "t._field_versions->" + name;
    // A table whose tombstones predate per-field tombstone versions: the record's version guards.
    const auto win = "(NOT EXCLUDED._deleted AND " + offered + " > coalesce(" + held + ", '[0, \"\"]') AND (NOT t._deleted OR " +
                     offered + " > " + tombstone_at + "))";
    const auto value = "CASE WHEN " + win + " THEN EXCLUDED." + c + " ELSE t." + c + " END";
    wins.push_back(win);
    r.field_sets.push_back(c + " = " + value);
    versions.push_back(name + ", GREATEST(" + held + ", CASE WHEN " + win + " THEN " + offered +
                       " END, CASE WHEN EXCLUDED._deleted THEN " + event_at + " END)");
    raised.push_back("coalesce(" + held + ", '[0, \"\"]') < " + event_at);
    if (f.required) incomplete.push_back("(" + value + ") IS NULL");
  }
  // jsonb_build_object takes at most 100 arguments: 40 fields per call.
  std::string merged = "t._field_versions";
  for (std::size_t i = 0; i < versions.size(); i += 40) {
    const std::vector<std::string> chunk(versions.begin() + static_cast<std::ptrdiff_t>(i),
                                         versions.begin() + static_cast<std::ptrdiff_t>(std::min(i + 40, versions.size())));
    merged += " || jsonb_strip_nulls(jsonb_build_object(" + joined(chunk, "", ", ") + "))";
  }
  auto when_newer = [&](const std::string& column) {
    return column + " = CASE WHEN " + kRowIsOlder + " THEN EXCLUDED." + column + " ELSE t." + column + " END";
  };
  r.record_sets = "_field_versions = " + merged + ", " + when_newer("_deleted") + ", " + when_newer("_version") + ", " +
                  when_newer("_event_id") + ", " + when_newer("_source") + ", " + when_newer("_origin") +
                  ", _incomplete = " + (incomplete.empty() ? "false" : joined(incomplete, "", " OR ")) +
                  ", _synced_at = EXCLUDED._synced_at";
  // A tombstone older than the record still raises the fields written before it: whatever the order
  // of arrival, no event older than a delete writes a field after it.
  r.guard = kRowIsOlder + " OR " + joined(wins, "", " OR ") + " OR (EXCLUDED._deleted AND (" +
            joined(raised, "", " OR ") + "))";
  return r;
}

// The audit's row for one column, [name, old, new] as text when they differ, else NULL (which
// array_cat skips). Compared as their type compares them, as the record's change is (is_changed): only
// a changed field is spelled out as text (a timestamp's text alone cost an update batch milliseconds).
std::string changed_row(const std::string& name, const std::string& column) {
  const auto o = "o." + column, n = "u." + column;
  return "CASE WHEN " + o + " IS DISTINCT FROM " + n + " THEN ARRAY[[" + quote_literal(name) + ", " + o + "::text, " +
         n + "::text]] END";
}

}  // namespace

MergeStatement merge_statement(const std::string& schema, const common::EntityConfig& entity) {
  MergeStatement out;
  Staging staging(out);
  const bool partial = entity.partial_events;
  const auto table = quote_ident(schema) + "." + quote_ident(entity.table);
  const auto key = quote_ident(entity.key);

  std::vector<std::string> fields, required;  // quoted field columns, in declaration order
  std::string stage = staging.bind(StagedColumn::kKey) + " AS " + key;
  for (std::size_t i = 0; i < entity.fields.size(); ++i) {
    const auto& f = entity.fields[i];
    fields.push_back(quote_ident(f.name));
    const auto staged = staging.bind(StagedColumn::kField, &f, static_cast<int>(i));
    stage += ", " + staged + "::" + common::field_sql_type(f.type) + " AS " + fields.back();
    if (f.required) required.push_back(staged + " IS NULL");
  }
  const auto version = staging.bind(StagedColumn::kVersion) + "::bigint";
  const auto deleted = staging.bind(StagedColumn::kDeleted) + "::boolean";
  const auto event_id = staging.bind(StagedColumn::kEventId);
  stage += ", " + version + " AS _version, " + deleted + " AS _deleted";
  stage += ", " + staging.bind(StagedColumn::kSource) + " AS _source";
  stage += ", " + staging.bind(StagedColumn::kOrigin) + " AS _origin";
  stage += ", " + event_id + " AS _event_id";
  stage += ", " + staging.bind(StagedColumn::kRunId) + " AS _run_id";
  std::string extra;  // the partial entity's bookkeeping columns
  if (partial) {
    // Per field the event carries, [version, event id]; a tombstone carries every field. A row a
    // partial event creates lacks the fields it did not name: incomplete while a required one is NULL.
    std::vector<std::string> names;
    for (const auto& f : entity.fields) names.push_back(quote_literal(f.name));
    const auto presence = staging.bind(StagedColumn::kFieldPresence);
    stage += ", coalesce((SELECT jsonb_object_agg(a.name, jsonb_build_array(" + version + ", " + event_id +
             ")) FROM unnest(ARRAY[" + joined(names, "", ", ") + "]) WITH ORDINALITY AS a(name, i) WHERE substr(" +
             presence + ", a.i::int, 1) = '1' OR " + deleted + "), '{}') AS _field_versions";
    stage += ", " + (required.empty() ? std::string("false") : "(" + joined(required, "", " OR ") + ")") +
             " AS _incomplete";
    extra = ", _field_versions, _incomplete";
  }
  const auto rules = partial ? partial_rules(entity) : full_rules(entity);
  const auto field_list = joined(fields, "", ", ");
  const auto incomplete = [&](const std::string& row) { return partial ? row + "._incomplete" : std::string("false"); };

  // The staged columns are cast to their fields' types by name, which is no cast at all where the
  // column is bound typed: the two variants differ only in the unnest's parameter types.
  const std::string head = "WITH stage AS MATERIALIZED (SELECT " + stage + " FROM ";
  std::string sql = "), ";  // the rest after the staging's unnest, which is known once every column is bound
  // A row this statement created carries the creating event's id in both _event_id and
  // _created_event (and its run in _created_run). A full image's touched row is either that or one
  // it updated; a partial event that wins a field of a row without being its newest leaves
  // _event_id alone, so for a partial entity the test does not tell its new rows apart.
  const std::string created = "up._created_event IS NOT DISTINCT FROM up._event_id";
  const std::string moved = "up._created_event IS DISTINCT FROM up._event_id";
  sql += "up AS (INSERT INTO " + table + " AS t (" + key + ", " + field_list +
         ", _version, _event_id, _deleted, _source, _origin, _synced_at" + extra +
         ", _created_version, _created_event, _created_run, _created_at) SELECT " + key + ", " + field_list +
         ", _version, _event_id, _deleted, _source, _origin, now()" + extra +
         ", _version, _event_id, _run_id, now() FROM stage ON CONFLICT (" +
         key + ") DO UPDATE SET " + joined(rules.field_sets, "", ", ") + ", " + rules.record_sets + " WHERE " +
         rules.guard + " RETURNING t." + key + ", " + joined(fields, "t.", ", ") + ", t._deleted" +
         (partial ? ", t._incomplete" : ", t._created_run") + ", t._event_id, t._created_event), ";
  // The rows the upsert touched as they were before it: every sub-statement of one statement reads
  // the same snapshot, so this reads the old versions although it runs after the upsert. Only the
  // touched rows are looked up, and of a full-image entity not those this statement created, so
  // that a new row costs no index probe here.
  sql += "old AS MATERIALIZED (SELECT t." + key + ", " + joined(fields, "t.", ", ") + ", t._deleted" +
         (partial ? ", t._incomplete" : "") + " FROM " + table + " t WHERE t." + key + " IN (SELECT " + key +
         " FROM up" + (partial ? "" : " WHERE " + moved) + ")), ";
  // cls: per staged event that moved an existing row (full image), or per staged event (partial):
  // whether it touched its row, and for a touched row: inserted, its content changed (else only
  // bookkeeping moved), whether it is a record readers see before and after (a row is not one while
  // incomplete) and, for the audit, its changed fields.
  const auto is_changed = "(o." + key + " IS NOT NULL AND ROW(" + joined(fields, "o.", ", ") +
                          ", o._deleted) IS DISTINCT FROM ROW(" + joined(fields, "u.", ", ") + ", u._deleted))";
  sql += "cls AS (SELECT s._run_id, u." + key + " IS NOT NULL AS touched, u._deleted, o." + key +
         " IS NULL AS is_insert, " + is_changed + " AS is_changed, (o." + key + " IS NOT NULL AND NOT " +
         incomplete("o") + ") AS was_record, NOT " + incomplete("u") + " AS is_record";
  if (entity.audit) {
    // One row per changed update or delete (R6), its changed fields as rows [field, old, new] of a
    // text[] (leadsync.field_changes shows one row per field). A chain of array_cat costs the
    // backend a fifth of what building the same as jsonb did (bench/README.md, "Issue 12 — one audit
    // row per changed record"). A creation is not audited: the row records it in its _created_*
    // columns, which no update touches (design.md §4).
    std::string changes;
    auto add = [&](const std::string& row) { changes = changes.empty() ? row : "array_cat(" + changes + ", " + row + ")"; };
    for (std::size_t i = 0; i < fields.size(); ++i) add(changed_row(entity.fields[i].name, fields[i]));
    add(changed_row("_deleted", "_deleted"));
    sql += ", s." + key + ", s._source, s._event_id, CASE WHEN " + is_changed + " THEN " + changes + " END AS changes";
  }
  // A full image's new rows need no join: the row says it was created, by which run (below). Only
  // the rows it moved meet their events and old versions, so that applying new rows sorts and joins
  // nothing (bench/README.md, issue 12 — "the statement's tail").
  if (partial) {
    sql += " FROM stage s LEFT JOIN up u ON u." + key + " = s." + key + " LEFT JOIN old o ON o." + key + " = u." +
           key + ")";
  } else {
    sql += " FROM old o JOIN up u ON u." + key + " = o." + key + " JOIN stage s ON s." + key + " = u." + key + ")";
  }
  if (entity.audit) {
    sql += ", audit AS (INSERT INTO leadsync.record_changes (entity, key, changes, source, event_id, run_id) SELECT " +
           staging.entity_name() + ", c." + key + ", c.changes, c._source, c._event_id, c._run_id FROM cls c WHERE "
           "c.changes IS NOT NULL)";
  }
  // Per run: inserted (a record appeared), updated, deleted, unchanged (touched, nothing a reader
  // sees changed: also a row that stays incomplete), stale (not touched).
  const std::string inserted = "NOT c._deleted AND c.is_record AND NOT c.was_record";
  const std::string updated = "NOT c._deleted AND c.is_record AND c.was_record AND c.is_changed";
  const std::string removed = "c._deleted AND (c.is_insert OR c.is_changed)";
  const auto counts = [&](const std::string& touched) {
    return "count(*) FILTER (WHERE " + touched + inserted + "), count(*) FILTER (WHERE " + touched + updated +
           "), count(*) FILTER (WHERE " + touched + removed + "), count(*) FILTER (WHERE " + touched + "NOT (" +
           inserted + ") AND NOT (" + updated + ") AND NOT (" + removed + "))";
  };
  if (partial) {
    sql += " SELECT c._run_id, " + counts("c.touched AND ") + ", count(*) FILTER (WHERE NOT c.touched) FROM cls c GROUP BY c._run_id";
  } else {
    // A full image's events: those that created their row (inserted, or deleted when a tombstone
    // created it), those that moved one (cls), and the rest of the staged events of each run, stale.
    sql += " SELECT r, sum(i)::bigint, sum(u)::bigint, sum(d)::bigint, sum(n)::bigint, sum(s)::bigint FROM ("
           "SELECT up._created_run, count(*) FILTER (WHERE NOT up._deleted), 0, count(*) FILTER (WHERE up._deleted), 0, "
           "-count(*) FROM up WHERE " + created + " GROUP BY up._created_run UNION ALL SELECT c._run_id, " + counts("") +
           ", -count(*) FROM cls c GROUP BY c._run_id UNION ALL SELECT s._run_id, 0, 0, 0, 0, count(*) FROM stage s GROUP "
           "BY s._run_id) AS per_run (r, i, u, d, n, s) GROUP BY r";
  }
  out.sql = head + staging.from(true) + sql;
  out.text_sql = head + staging.from(false) + sql;
  return out;
}

}  // namespace leadsync::workers
