#include "ctl/row_backup.h"

#include <nlohmann/json.hpp>

#include <chrono>

#include "common/errors.h"
#include "common/pg.h"
#include "ctl/repair.h"

namespace leadsync::ctl {
namespace {

// The bookkeeping columns a rollback puts back beside the fields.
std::vector<std::string> kept_columns(const common::EntityConfig& entity) {
  std::vector<std::string> out;
  for (const auto& f : entity.fields) out.push_back(f.name);
  for (const char* c : {"_deleted", "_source", "_origin"}) out.emplace_back(c);
  if (entity.partial_events) out.emplace_back("_incomplete");
  return out;
}

void utc_iso(pqxx::work& tx) {
  tx.exec("SET LOCAL TimeZone = 'UTC'");
  tx.exec("SET LOCAL DateStyle = 'ISO'");
}

}  // namespace

void back_up_rows(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity,
                  const std::string& source, const std::string& run_id, const std::string& backup_id,
                  const std::vector<std::string>& keys) {
  std::string values;
  for (const auto& c : kept_columns(entity)) {
    values += (values.empty() ? "" : ", ") + std::string("(") + common::quote_literal(c) + ", t." + conn.quote_name(c) +
              "::text)";
  }
  common::TextArrayLiteral list;
  for (const auto& k : keys) list.add(k);
  pqxx::work tx(conn);
  utc_iso(tx);
  tx.exec_params("INSERT INTO leadsync.backups (backup_id, entity, key, row_data, reason, source, run_id) "
                 "SELECT $1, $2, k, (SELECT (SELECT jsonb_object_agg(n, v) FROM (VALUES " + values +
                     ") x(n, v)) FROM " + common::qualified(conn, config.postgres.schema, entity.table) + " t WHERE t." +
                     conn.quote_name(entity.key) + " = k), 'repair', $3, $4 FROM unnest($5::text[]) k",
                 backup_id, entity.name, source, run_id, list.str());
  tx.commit();
}

RollbackResult rollback_backup(const common::Config& config, const std::string& backup_id) {
  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  pqxx::work tx(*conn);
  utc_iso(tx);
  // A leadsync transaction (design.md §9): the capture triggers of the reverse direction neither
  // stamp the restored rows as an application's edit nor send them to the CRM. The repair it undoes
  // never wrote to the CRM, so neither does its undo (docs/operating.md, "rollback").
  tx.exec("SET LOCAL leadsync.origin = 'rollback'");
  const auto rows = tx.exec_params(
      "SELECT entity, key, row_data::text, coalesce(restored_at::text, '') FROM leadsync.backups WHERE backup_id = $1 "
      "ORDER BY key",
      backup_id);
  if (rows.empty()) throw common::ConfigError("rollback: there is no backup " + backup_id);
  RollbackResult result;
  result.backup_id = backup_id;
  result.entity = rows[0][0].as<std::string>();
  result.previously_restored_at = rows[0][3].as<std::string>();
  const auto& entity = config.entity(result.entity);
  const auto table = common::qualified(*conn, config.postgres.schema, entity.table);
  const auto key = conn->quote_name(entity.key);
  const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch()).count();
  common::TextArrayLiteral keys;
  for (const auto& r : rows) keys.add(r[1].as<std::string>());
  result.version = std::max<int64_t>(
      now, tx.exec_params1("SELECT coalesce(max(_version), 0) + 1 FROM " + table + " WHERE " + key + " = ANY($1::text[])",
                           keys.str())[0].as<int64_t>());
  const std::string event_id = "rollback:" + backup_id;

  // One statement for every kept row: the backed-up text cast back to each column's type.
  std::string cols = key, casts = "$1", sets;
  for (const auto& f : entity.fields) {
    const auto q = conn->quote_name(f.name);
    cols += ", " + q;
    casts += ", (d->>" + common::quote_literal(f.name) + ")::" + common::field_sql_type(f.type);
    sets += q + " = EXCLUDED." + q + ", ";
  }
  cols += ", _version, _event_id, _deleted, _source, _origin, _synced_at";
  casts += ", $3, $4, (d->>'_deleted')::boolean, d->>'_source', d->>'_origin', now()";
  sets += "_version = EXCLUDED._version, _event_id = EXCLUDED._event_id, _deleted = EXCLUDED._deleted, "
          "_source = EXCLUDED._source, _origin = EXCLUDED._origin, _synced_at = EXCLUDED._synced_at";
  if (entity.partial_events) {
    // Every field now carries the rollback's version, so an older partial event cannot undo it.
    cols += ", _incomplete, _field_versions";
    casts += ", coalesce((d->>'_incomplete')::boolean, false), (SELECT jsonb_object_agg(f, jsonb_build_array($3, $4)) "
             "FROM jsonb_object_keys(d) f WHERE f NOT LIKE '\\_%')";
    sets += ", _incomplete = EXCLUDED._incomplete, _field_versions = EXCLUDED._field_versions";
  }
  const auto upsert = "INSERT INTO " + table + " (" + cols + ") SELECT " + casts + " FROM (SELECT $2::jsonb AS d) x " +
                      "ON CONFLICT (" + key + ") DO UPDATE SET " + sets;
  const auto columns = kept_columns(entity);
  std::string current_cols;
  for (const auto& c : columns) current_cols += (current_cols.empty() ? "" : ", ") + conn->quote_name(c) + "::text";

  for (const auto& r : rows) {
    RestoredRow restored;
    restored.key = r[1].as<std::string>();
    const auto now_row = tx.exec_params("SELECT " + current_cols + " FROM " + table + " WHERE " + key + " = $1",
                                        restored.key);
    if (r[2].is_null()) {
      restored.removed = !now_row.empty();
      tx.exec_params("DELETE FROM " + table + " WHERE " + key + " = $1", restored.key);
    } else {
      const auto data = nlohmann::json::parse(r[2].as<std::string>());
      for (std::size_t i = 0; i < columns.size(); ++i) {
        const auto& name = columns[i];
        const auto& old = data.at(name);
        const bool was_null = old.is_null();
        const bool is_null = now_row.empty() || now_row[0][static_cast<int>(i)].is_null();
        if (was_null != is_null || (!was_null && old.get<std::string>() != now_row[0][static_cast<int>(i)].c_str())) {
          restored.fields.push_back(name);
        }
      }
      tx.exec_params(upsert, restored.key, r[2].as<std::string>(), result.version, event_id);
    }
    result.rows.push_back(std::move(restored));
  }
  tx.exec_params("UPDATE leadsync.backups SET restored_at = now() WHERE backup_id = $1", backup_id);
  tx.commit();
  return result;
}

std::string format_rollback(const RollbackResult& r) {
  std::string out = "rollback " + r.backup_id + ": " + std::to_string(r.rows.size()) + " row(s) of " + r.entity +
                    " restored at version " + std::to_string(r.version) + "\n";
  if (!r.previously_restored_at.empty()) out += "  (this backup was rolled back before, at " + r.previously_restored_at + ")\n";
  for (const auto& row : r.rows) {
    out += "  " + row.key + ": ";
    if (row.removed) {
      out += "removed (it did not exist before the repair)\n";
    } else if (row.fields.empty()) {
      out += "already as backed up\n";
    } else {
      std::string list;
      for (const auto& f : row.fields) list += (list.empty() ? "" : ", ") + f;
      out += list + "\n";
    }
  }
  return out;
}

}  // namespace leadsync::ctl
