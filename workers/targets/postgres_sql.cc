#include "workers/targets/postgres_sql.h"

#include "common/pg.h"

namespace leadsync::workers {
namespace {

using common::quote_ident;

// The staged batch: every bound column gets its parameter number here and nowhere else.
class Staging {
 public:
  explicit Staging(MergeStatement& out) : out_(out) {}

  // Binds one more text[] column; returns how the staging CTE reads it.
  std::string bind(StagedColumn kind, int field = -1) {
    out_.columns.push_back(kind);
    out_.column_field.push_back(field);
    return "s.c" + std::to_string(out_.columns.size());
  }
  // The scalar parameter after the columns.
  std::string entity_name() {
    out_.binds_entity_name = true;
    return "$" + std::to_string(out_.columns.size() + 1);
  }
  std::string from() const {
    std::string args, names;
    for (std::size_t i = 1; i <= out_.columns.size(); ++i) {
      args += (i > 1 ? ", $" : "$") + std::to_string(i) + "::text[]";
      names += (i > 1 ? ", c" : "c") + std::to_string(i);
    }
    return "unnest(" + args + ") AS s(" + names + ")";
  }

 private:
  MergeStatement& out_;
};

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
    r.field_sets.push_back(c + " = CASE WHEN EXCLUDED._deleted THEN t." + c + " ELSE EXCLUDED." + c + " END");
  }
  r.record_sets =
      "_version = EXCLUDED._version, _deleted = EXCLUDED._deleted, _source = EXCLUDED._source, "
      "_origin = EXCLUDED._origin, _synced_at = EXCLUDED._synced_at";
  r.guard = "t._version < EXCLUDED._version";
  return r;
}

// Partial events: each field is guarded by its own version in _field_versions, and nothing is
// written over a newer tombstone.
ConflictRules partial_rules(const common::EntityConfig& entity) {
  const std::string not_under_tombstone = "NOT (t._deleted AND t._version >= EXCLUDED._version)";
  ConflictRules r;
  for (const auto& f : entity.fields) {
    const auto c = quote_ident(f.name);
    const auto name = common::quote_literal(f.name);
    r.field_sets.push_back(c + " = CASE WHEN EXCLUDED._field_versions ? " + name +
                           " AND coalesce((t._field_versions->>" + name + ")::bigint, 0) < EXCLUDED._version AND " +
                           not_under_tombstone + " THEN EXCLUDED." + c + " ELSE t." + c + " END");
  }
  const std::string newer_fields =
      "SELECT e.key, e.value FROM jsonb_each_text(EXCLUDED._field_versions) e WHERE "
      "coalesce((t._field_versions->>e.key)::bigint, 0) < e.value::bigint";
  // The record moves when any field wins or a newer tombstone arrives; its _version is the newest
  // version any part of it has seen.
  r.record_sets = "_field_versions = CASE WHEN t._deleted AND t._version >= EXCLUDED._version THEN t._field_versions "
                  "ELSE t._field_versions || coalesce((SELECT jsonb_object_agg(n.key, n.value::bigint) FROM (" +
                  newer_fields + ") n), '{}') END, "
                  "_deleted = CASE WHEN t._version < EXCLUDED._version THEN EXCLUDED._deleted ELSE t._deleted END, "
                  "_version = GREATEST(t._version, EXCLUDED._version), _source = EXCLUDED._source, "
                  "_origin = EXCLUDED._origin, _synced_at = EXCLUDED._synced_at";
  r.guard = "t._version < EXCLUDED._version OR EXISTS (" + newer_fields + " AND " + not_under_tombstone + ")";
  return r;
}

std::string joined(const std::vector<std::string>& parts, const std::string& prefix, const std::string& sep) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : sep) + prefix + p;
  return out;
}

}  // namespace

MergeStatement merge_statement(const std::string& schema, const common::EntityConfig& entity) {
  MergeStatement out;
  Staging staging(out);
  const bool partial = entity.partial_events;
  const auto table = quote_ident(schema) + "." + quote_ident(entity.table);
  const auto key = quote_ident(entity.key);

  std::vector<std::string> fields;  // quoted field columns, in declaration order
  std::string stage = staging.bind(StagedColumn::kKey) + " AS " + key;
  for (std::size_t i = 0; i < entity.fields.size(); ++i) {
    const auto& f = entity.fields[i];
    fields.push_back(quote_ident(f.name));
    stage += ", " + staging.bind(StagedColumn::kField, static_cast<int>(i)) +
             "::" + common::field_sql_type(f.type) + " AS " + fields.back();
  }
  const auto version = staging.bind(StagedColumn::kVersion) + "::bigint";
  stage += ", " + version + " AS _version";
  stage += ", " + staging.bind(StagedColumn::kDeleted) + "::boolean AS _deleted";
  stage += ", " + staging.bind(StagedColumn::kSource) + " AS _source";
  stage += ", " + staging.bind(StagedColumn::kOrigin) + " AS _origin";
  stage += ", " + staging.bind(StagedColumn::kEventId) + " AS _event_id";
  stage += ", " + staging.bind(StagedColumn::kRunId) + " AS _run_id";
  if (partial) {
    // The staged row's _field_versions holds the event's version for exactly the fields it carries.
    std::vector<std::string> names;
    for (const auto& f : entity.fields) names.push_back(common::quote_literal(f.name));
    const auto presence = staging.bind(StagedColumn::kFieldPresence);
    stage += ", coalesce((SELECT jsonb_object_agg(a.name, " + version + ") FROM unnest(ARRAY[" + joined(names, "", ", ") +
             "]) WITH ORDINALITY AS a(name, i) WHERE substr(" + presence +
             ", a.i::int, 1) = '1'), '{}') AS _field_versions";
  }
  const auto rules = partial ? partial_rules(entity) : full_rules(entity);
  const std::string extra = partial ? ", _field_versions" : "";
  const auto field_list = joined(fields, "", ", ");

  std::string sql = "WITH stage AS MATERIALIZED (SELECT " + stage + " FROM " + staging.from() + "), ";
  sql += "old AS MATERIALIZED (SELECT t." + key + ", " + joined(fields, "t.", ", ") + ", t._deleted FROM " + table +
         " t WHERE t." + key + " IN (SELECT " + key + " FROM stage)), ";
  sql += "up AS (INSERT INTO " + table + " AS t (" + key + ", " + field_list +
         ", _version, _deleted, _source, _origin, _synced_at" + extra + ") SELECT " + key + ", " + field_list +
         ", _version, _deleted, _source, _origin, now()" + extra + " FROM stage ON CONFLICT (" + key +
         ") DO UPDATE SET " + joined(rules.field_sets, "", ", ") + ", " + rules.record_sets + " WHERE " + rules.guard +
         " RETURNING t." + key + ", " + joined(fields, "t.", ", ") + ", t._deleted), ";
  // cls: each touched row, classified as an insert or a change of content (else only _version moved).
  sql += "cls AS (SELECT up.*, o." + key + " IS NULL AS is_insert, (o." + key + " IS NOT NULL AND ROW(" +
         joined(fields, "o.", ", ") + ", o._deleted) IS DISTINCT FROM ROW(" + joined(fields, "up.", ", ") +
         ", up._deleted)) AS is_changed FROM up LEFT JOIN old o ON o." + key + " = up." + key + ")";
  if (entity.audit) {
    // One row per changed field of an update, one ('*') per insert (R6).
    const auto entity_name = staging.entity_name();
    std::string changes;
    for (std::size_t i = 0; i < fields.size(); ++i) {
      changes += "(" + common::quote_literal(entity.fields[i].name) + ", o." + fields[i] + "::text, c." + fields[i] +
                 "::text), ";
    }
    sql += ", audit AS (INSERT INTO leadsync.field_changes (entity, key, field, old_value, new_value, source, "
           "event_id) SELECT " + entity_name + ", c." + key + ", f.field, f.o, f.n, s._source, s._event_id FROM cls c "
           "JOIN stage s ON s." + key + " = c." + key + " JOIN old o ON o." + key + " = c." + key +
           " CROSS JOIN LATERAL (VALUES " + changes + "('_deleted', o._deleted::text, c._deleted::text)) "
           "AS f(field, o, n) WHERE c.is_changed AND f.o IS DISTINCT FROM f.n "
           "UNION ALL SELECT " + entity_name + ", c." + key +
           ", '*', NULL, CASE WHEN c._deleted THEN 'created as deleted' ELSE 'created' END, s._source, s._event_id "
           "FROM cls c JOIN stage s ON s." + key + " = c." + key + " WHERE c.is_insert)";
  }
  sql += " SELECT s._run_id,"
         " count(*) FILTER (WHERE c.is_insert AND NOT c._deleted),"
         " count(*) FILTER (WHERE c.is_changed AND NOT c._deleted),"
         " count(*) FILTER (WHERE c._deleted AND (c.is_insert OR c.is_changed)),"
         " count(*) FILTER (WHERE c." + key + " IS NOT NULL AND NOT c.is_insert AND NOT c.is_changed),"
         " count(*) FILTER (WHERE c." + key + " IS NULL)"
         " FROM stage s LEFT JOIN cls c ON c." + key + " = s." + key + " GROUP BY s._run_id";
  out.sql = std::move(sql);
  return out;
}

}  // namespace leadsync::workers
