#include "workers/apply.h"

#include "common/pg.h"

#include <algorithm>
#include <cstdio>
#include <unordered_map>

namespace leadsync::workers {
namespace {

using common::FieldType;
using common::Value;

std::string list_literal(const leadsync::v1::StringList& list) {
  common::TextArrayLiteral a;
  for (const auto& v : list.values()) a.add(std::string_view(v));
  return a.str();
}

}  // namespace

ApplyCounts& ApplyCounts::operator+=(const ApplyCounts& o) {
  inserted += o.inserted;
  updated += o.updated;
  deleted += o.deleted;
  unchanged += o.unchanged;
  stale += o.stale;
  failed += o.failed;
  return *this;
}

std::optional<std::string> sql_text(const common::FieldConfig& field, const Value& v) {
  char buf[40];
  switch (v.kind_case()) {
    case Value::kNullValue:
    case Value::KIND_NOT_SET: return std::nullopt;
    case Value::kBoolValue: return std::string(v.bool_value() ? "t" : "f");
    case Value::kIntValue: return std::to_string(v.int_value());
    case Value::kDoubleValue:
      std::snprintf(buf, sizeof buf, "%.17g", v.double_value());
      return std::string(buf);
    case Value::kStringValue: return v.string_value();
    case Value::kTimestampMicros:
      return field.type == FieldType::kDate ? common::format_date(v.timestamp_micros())
                                            : common::format_timestamp_micros(v.timestamp_micros());
    case Value::kStringList: return list_literal(v.string_list());
    case Value::kJsonValue: return v.json_value();
  }
  return std::nullopt;
}

std::map<std::string, std::vector<std::size_t>> newest_per_key(
    const std::vector<const common::ChangeEvent*>& events, std::map<std::string, ApplyCounts>& stale_per_run) {
  std::map<std::string, std::unordered_map<std::string, std::size_t>> newest;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = *events[i];
    auto [it, fresh] = newest[e.entity()].try_emplace(e.key(), i);
    if (fresh) continue;
    const auto& held = *events[it->second];
    if (held.source_version() > e.source_version()) {
      stale_per_run[e.run_id()].stale++;
    } else {
      stale_per_run[held.run_id()].stale++;
      it->second = i;
    }
  }
  std::map<std::string, std::vector<std::size_t>> out;
  for (auto& [entity, by_key] : newest) {
    auto& list = out[entity];
    list.reserve(by_key.size());
    for (const auto& [key, index] : by_key) list.push_back(index);
    std::sort(list.begin(), list.end());  // batch order: deterministic statements
  }
  return out;
}

std::string validate_event(const common::Config& config, const common::ChangeEvent& e) {
  const auto it = config.entities.find(e.entity());
  if (it == config.entities.end()) return "unknown entity '" + e.entity() + "'";
  const auto& entity = it->second;
  if (e.key().empty()) return "empty key";
  if (e.op() != leadsync::v1::OP_UPSERT && e.op() != leadsync::v1::OP_DELETE) {
    return "op must be UPSERT or DELETE, got " + std::to_string(static_cast<int>(e.op()));
  }
  if (e.source_version() <= 0) return "source_version must be positive";
  if (e.op() == leadsync::v1::OP_DELETE) return "";
  if (e.partial() && !entity.partial_events) {
    return "partial events are not accepted for entity '" + entity.name + "' (set partial_events: true)";
  }
  if (e.partial() && e.fields().empty()) return "partial event names no field";
  for (const auto& [name, value] : e.fields()) {
    const auto* f = entity.field(name);
    if (!f) return "field '" + name + "' is not a field of entity '" + entity.name + "'";
    if (auto problem = common::check_value(*f, value); !problem.empty()) return problem;
  }
  if (e.partial()) return "";
  // A full image names every field: a missing one would be silently nulled (R6).
  for (const auto& f : entity.fields) {
    if (!e.fields().count(f.name)) return "full event lacks field '" + f.name + "'";
  }
  return "";
}

EntityApplier::EntityApplier(const common::Config& config, const common::EntityConfig& entity,
                             pqxx::connection_base& conn)
    : entity_(entity) {
  auto q = [&](const std::string& name) { return conn.quote_name(name); };
  const auto table = q(config.postgres.schema) + "." + q(entity.table);
  const auto key = q(entity.key);
  const std::size_t n = entity.fields.size();
  // Parameters: $1 keys, $2..$(n+1) fields, then version, deleted, source, origin, event id, run id, entity.
  auto param = [](std::size_t i) { return "$" + std::to_string(i); };
  std::string unnest_args = param(1) + "::text[]";
  std::string unnest_cols = "k";
  std::string stage_cols = "s.k AS " + key;
  for (std::size_t i = 0; i < n; ++i) {
    const auto& f = entity.fields[i];
    unnest_args += ", " + param(i + 2) + "::text[]";
    unnest_cols += ", f" + std::to_string(i);
    stage_cols += ", s.f" + std::to_string(i) + "::" + common::field_sql_type(f.type) + " AS " + q(f.name);
  }
  for (std::size_t i = 0; i < 6; ++i) unnest_args += ", " + param(n + 2 + i) + "::text[]";
  unnest_cols += ", v, d, src, org, eid, rid";
  stage_cols +=
      ", s.v::bigint AS _version, s.d::boolean AS _deleted, s.src AS _source, s.org AS _origin, s.eid AS _event_id, "
      "s.rid AS _run_id";
  const bool partial = entity.partial_events;
  if (partial) {
    // Which fields each event carries, as a mask ('1' = present): the staged row's _field_versions
    // holds the event's version for exactly those fields.
    unnest_args += ", " + param(n + 8) + "::text[]";
    unnest_cols += ", pm";
    std::string names;
    for (const auto& f : entity.fields) names += (names.empty() ? "'" : ", '") + f.name + "'";
    stage_cols += ", coalesce((SELECT jsonb_object_agg(a.name, s.v::bigint) FROM unnest(ARRAY[" + names +
                  "]) WITH ORDINALITY AS a(name, i) WHERE substr(s.pm, a.i::int, 1) = '1'), '{}') AS _field_versions";
  }
  const auto entity_param = param(n + (partial ? 9 : 8));

  std::string field_list, old_list, up_list, excluded_set, old_row, up_row, audit_values;
  // old_row / up_row: the compared content of a record before and after, inside `cls`.
  for (const auto& f : entity.fields) {
    const auto c = q(f.name);
    field_list += ", " + c;
    old_list += ", t." + c;
    up_list += ", t." + c;
    if (partial) {
      // Per-field guard: the event carries the field and is newer than the field's last write,
      // and the record is not a newer tombstone.
      excluded_set += c + " = CASE WHEN EXCLUDED._field_versions ? '" + f.name +
                      "' AND coalesce((t._field_versions->>'" + f.name +
                      "')::bigint, 0) < EXCLUDED._version AND NOT (t._deleted AND t._version >= EXCLUDED._version) "
                      "THEN EXCLUDED." + c + " ELSE t." + c + " END, ";
    } else {
      // A tombstone keeps the record's last values; only an upsert changes them.
      excluded_set += c + " = CASE WHEN EXCLUDED._deleted THEN t." + c + " ELSE EXCLUDED." + c + " END, ";
    }
    old_row += "o." + c + ", ";
    up_row += "up." + c + ", ";
    audit_values += "('" + f.name + "', o." + c + "::text, c." + c + "::text), ";
  }

  sql_ = "WITH stage AS MATERIALIZED (SELECT " + stage_cols + " FROM unnest(" + unnest_args + ") AS s(" +
         unnest_cols + ")), ";
  sql_ += "old AS MATERIALIZED (SELECT t." + key + old_list + ", t._deleted FROM " + table + " t WHERE t." + key +
          " IN (SELECT " + key + " FROM stage)), ";
  const std::string extra_cols = partial ? ", _field_versions" : "";
  std::string guard = "t._version < EXCLUDED._version";
  std::string record_set =
      "_version = EXCLUDED._version, _deleted = EXCLUDED._deleted, _source = EXCLUDED._source, "
      "_origin = EXCLUDED._origin, _synced_at = EXCLUDED._synced_at";
  if (partial) {
    // The record moves when any field wins or a newer tombstone arrives; its _version is the
    // newest version any part of it has seen.
    guard += " OR EXISTS (SELECT 1 FROM jsonb_each_text(EXCLUDED._field_versions) e WHERE coalesce((t._field_versions->>"
             "e.key)::bigint, 0) < e.value::bigint AND NOT (t._deleted AND t._version >= EXCLUDED._version))";
    record_set =
        "_field_versions = CASE WHEN t._deleted AND t._version >= EXCLUDED._version THEN t._field_versions ELSE "
        "t._field_versions || coalesce((SELECT jsonb_object_agg(e.key, e.value::bigint) FROM "
        "jsonb_each_text(EXCLUDED._field_versions) e WHERE coalesce((t._field_versions->>e.key)::bigint, 0) < "
        "e.value::bigint), '{}') END, "
        "_deleted = CASE WHEN t._version < EXCLUDED._version THEN EXCLUDED._deleted ELSE t._deleted END, "
        "_version = GREATEST(t._version, EXCLUDED._version), _source = EXCLUDED._source, _origin = EXCLUDED._origin, "
        "_synced_at = EXCLUDED._synced_at";
  }
  sql_ += "up AS (INSERT INTO " + table + " AS t (" + key + field_list +
          ", _version, _deleted, _source, _origin, _synced_at" + extra_cols + ") SELECT " + key + field_list +
          ", _version, _deleted, _source, _origin, now()" + extra_cols + " FROM stage ON CONFLICT (" + key +
          ") DO UPDATE SET " + excluded_set + record_set + " WHERE " + guard + " RETURNING t." + key + up_list +
          ", t._deleted), ";
  sql_ += "cls AS (SELECT up.*, o." + key + " IS NULL AS is_insert, (o." + key + " IS NOT NULL AND ROW(" + old_row +
          "o._deleted) IS DISTINCT FROM ROW(" + up_row + "up._deleted)) AS is_changed FROM up LEFT JOIN old o ON o." +
          key + " = up." + key + ")";
  if (entity.audit) {
    sql_ += ", audit AS (INSERT INTO leadsync.field_changes (entity, key, field, old_value, new_value, source, "
            "event_id) SELECT " + entity_param + ", c." + key + ", f.field, f.o, f.n, s._source, s._event_id FROM cls c "
            "JOIN stage s ON s." + key + " = c." + key + " JOIN old o ON o." + key + " = c." + key +
            " CROSS JOIN LATERAL (VALUES " + audit_values + "('_deleted', o._deleted::text, c._deleted::text)) "
            "AS f(field, o, n) WHERE c.is_changed AND f.o IS DISTINCT FROM f.n "
            "UNION ALL SELECT " + entity_param + ", c." + key +
            ", '*', NULL, CASE WHEN c._deleted THEN 'created as deleted' ELSE 'created' END, s._source, s._event_id "
            "FROM cls c JOIN stage s ON s." + key + " = c." + key + " WHERE c.is_insert)";
  }
  sql_ +=
      " SELECT s._run_id,"
      " count(*) FILTER (WHERE c.is_insert AND NOT c._deleted),"
      " count(*) FILTER (WHERE c.is_changed AND NOT c._deleted),"
      " count(*) FILTER (WHERE c._deleted AND (c.is_insert OR c.is_changed)),"
      " count(*) FILTER (WHERE c." + key + " IS NOT NULL AND NOT c.is_insert AND NOT c.is_changed),"
      " count(*) FILTER (WHERE c." + key + " IS NULL)"
      " FROM stage s LEFT JOIN cls c ON c." + key + " = s." + key + " GROUP BY s._run_id";
}

std::map<std::string, ApplyCounts> EntityApplier::apply(pqxx::transaction_base& tx,
                                                        const std::vector<const common::ChangeEvent*>& events) const {
  std::map<std::string, ApplyCounts> out;
  if (events.empty()) return out;
  const std::size_t n = entity_.fields.size();
  std::vector<common::TextArrayLiteral> columns(n + (entity_.partial_events ? 8 : 7));
  for (auto& c : columns) c.reserve(events.size() * 16);
  for (const auto* e : events) {
    columns[0].add(e->key());
    const bool is_delete = e->op() == leadsync::v1::OP_DELETE;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& f = entity_.fields[i];
      if (is_delete) {
        columns[i + 1].add(std::nullopt);
        continue;
      }
      const auto it = e->fields().find(f.name);
      columns[i + 1].add(it == e->fields().end() ? std::nullopt : sql_text(f, it->second));
    }
    columns[n + 1].add(std::to_string(e->source_version()));
    columns[n + 2].add(std::string(is_delete ? "t" : "f"));
    columns[n + 3].add(e->source());
    columns[n + 4].add(e->origin().empty() ? e->source() : e->origin());
    columns[n + 5].add(e->event_id());
    columns[n + 6].add(e->run_id());
    if (entity_.partial_events) {
      std::string mask(n, '0');
      for (std::size_t i = 0; i < n && !is_delete; ++i) {
        if (e->fields().count(entity_.fields[i].name)) mask[i] = '1';
      }
      columns[n + 7].add(mask);
    }
  }
  std::vector<std::string> params;
  params.reserve(n + 8);
  for (const auto& c : columns) params.push_back(c.str());
  if (entity_.audit) params.push_back(entity_.name);  // the statement names it only for audit rows
  const auto rows = tx.exec_params(sql_, pqxx::prepare::make_dynamic_params(params));
  for (const auto& r : rows) {
    auto& c = out[r[0].is_null() ? std::string() : r[0].as<std::string>()];
    c.inserted += r[1].as<int64_t>();
    c.updated += r[2].as<int64_t>();
    c.deleted += r[3].as<int64_t>();
    c.unchanged += r[4].as<int64_t>();
    c.stale += r[5].as<int64_t>();
  }
  return out;
}

}  // namespace leadsync::workers
