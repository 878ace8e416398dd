#include "ctl/explain.h"

#include <cstdio>

#include "common/errors.h"
#include "common/mapping.h"
#include "common/pg.h"
#include "common/redact.h"
#include "ctl/dlq.h"
#include "ctl/sorted_source.h"
#include "ctl/table_cursor.h"

namespace leadsync::ctl {
namespace {

using nlohmann::json;

constexpr int kRecentChanges = 20;

std::string text(const pqxx::field& f) { return f.is_null() ? std::string() : std::string(f.c_str()); }
json nullable(const pqxx::field& f) { return f.is_null() ? json(nullptr) : json(f.c_str()); }

std::string hex_checksum(int64_t stored) {
  char out[24];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(stored));
  return out;
}

json source_side(const common::Config& config, const common::SourceConfig& source, const std::set<std::string>& keys,
                 const std::string& record_key, const std::unordered_map<std::string, std::string>& links,
                 const TableRow* row, const std::vector<const common::FieldConfig*>& fields) {
  json out{{"source", source.name}, {"status", "absent"}};
  SortedSourceOptions options;
  options.keys = keys;
  try {
    SortedSource snapshot(config, source, links, options);
    SourceEntry e;
    while (snapshot.next(e)) {
      if (e.match_key != record_key) continue;
      out["position"] = e.position;
      out["source_key"] = e.event.key();
      if (e.kind != SourceEntry::Kind::kRecord) {
        out["status"] = "rejected";
        out["reason"] = e.kind == SourceEntry::Kind::kRejected ? e.reason : "the row could not be parsed";
        break;
      }
      out["status"] = "record";
      json values = json::object(), differs = json::array();
      for (std::size_t i = 0; i < fields.size(); ++i) {
        const auto it = e.event.fields().find(fields[i]->name);
        if (it == e.event.fields().end()) continue;
        values[fields[i]->name] = common::describe_value(it->second);
        if (row && !row->deleted && (!row->values[i] || !common::same_value(it->second, *row->values[i]))) {
          differs.push_back(fields[i]->name);
        }
      }
      out["fields"] = values;
      out["differs_from_database"] = differs;
      break;
    }
  } catch (const std::exception& ex) {
    out["status"] = "unreadable";
    out["reason"] = common::redact(ex.what());
  }
  return out;
}

}  // namespace

json explain_record(const common::Config& config, const std::string& entity_name, const std::string& key) {
  const auto it = config.entities.find(entity_name);
  if (it == config.entities.end()) throw common::ConfigError("explain: no entity named '" + entity_name + "'");
  const auto& entity = it->second;
  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  json out{{"entity", entity.name}, {"key", key}};

  std::unordered_map<std::string, std::string> links;
  std::string record_key = key;
  json identities = json::array();
  {
    pqxx::work tx(*conn);
    links = identity_links(tx, entity.name);
    if (const auto l = links.find(key); l != links.end()) record_key = l->second;
    for (const auto& r : tx.exec_params("SELECT field, value, key, linked_at::text FROM leadsync.identities WHERE "
                                        "entity = $1 AND (key = $2 OR value = $3) ORDER BY linked_at",
                                        entity.name, record_key, key)) {
      identities.push_back({{"field", text(r[0])}, {"value", text(r[1])}, {"key", text(r[2])}, {"linked_at", text(r[3])}});
    }
  }
  out["record_key"] = record_key;
  out["identity_links"] = identities;

  std::vector<const common::FieldConfig*> fields;
  for (const auto& f : entity.fields) fields.push_back(&f);
  std::optional<TableRow> row;
  {
    TableCursor cursor(*conn, config, entity, "", fields, {record_key});
    TableRow r;
    if (cursor.next(r)) row = std::move(r);
    json db{{"exists", row.has_value()}};
    if (row) {
      json values = json::object();
      for (std::size_t i = 0; i < fields.size(); ++i) {
        values[fields[i]->name] = row->values[i] ? common::describe_value(*row->values[i]) : "(unreadable)";
      }
      const auto b = cursor.transaction().exec_params1(
          "SELECT _version, _source, _origin, _event_id, _deleted, _synced_at::text, _created_version, _created_event, "
          "_created_run, _created_at::text FROM " +
              common::qualified(*conn, config.postgres.schema, entity.table) + " WHERE " + conn->quote_name(entity.key) +
              " = $1",
          record_key);
      db.update({{"version", b[0].as<int64_t>()}, {"source", nullable(b[1])}, {"origin", nullable(b[2])},
                 {"event_id", nullable(b[3])}, {"deleted", b[4].as<bool>()}, {"synced_at", nullable(b[5])},
                 {"fields", values}});
      // When and by which event and run the record was created: kept on the row (design.md §4);
      // rows created before that kept it as an audit row (field '*').
      json created = nullptr;
      if (!b[6].is_null()) {
        created = {{"version", b[6].as<int64_t>()}, {"event_id", nullable(b[7])}, {"run_id", nullable(b[8])},
                   {"at", nullable(b[9])}};
      } else {
        const auto old = cursor.transaction().exec_params(
            "SELECT at::text, event_id, run_id FROM leadsync.field_changes WHERE entity = $1 AND key = $2 AND "
            "field = '*' ORDER BY at, id LIMIT 1",
            entity.name, record_key);
        if (!old.empty()) {
          created = {{"version", nullptr}, {"event_id", nullable(old[0][1])}, {"run_id", nullable(old[0][2])},
                     {"at", nullable(old[0][0])}};
        }
      }
      db["created"] = created;
    }
    out["database"] = db;

    auto& tx = cursor.transaction();
    json sources = json::array();
    std::set<std::string> keys{key, record_key};
    for (const auto& [linked, target] : links) {
      if (target == record_key) keys.insert(linked);
    }
    for (const auto& s : config.sources) {
      if (s.entity != entity.name) continue;
      auto side = source_side(config, s, keys, record_key, links, row ? &*row : nullptr, fields);
      const auto state_key = side.value("source_key", record_key);
      const auto st = tx.exec_params(
          "SELECT s.checksum, s.version, s.run_id, r.status, r.trigger, r.finished_at::text FROM leadsync.source_state s "
          "LEFT JOIN leadsync.sync_runs r ON r.run_id = s.run_id WHERE s.source = $1 AND s.key = $2",
          s.name, state_key);
      if (!st.empty()) {
        side["stored_state"] = {{"checksum", hex_checksum(st[0][0].as<int64_t>())}, {"version", st[0][1].as<int64_t>()},
                                {"run_id", text(st[0][2])}, {"run_status", text(st[0][3])},
                                {"run_trigger", text(st[0][4])}, {"run_finished_at", text(st[0][5])}};
      }
      sources.push_back(side);
    }
    out["sources"] = sources;

    json changes = json::array();
    for (const auto& r : tx.exec_params("SELECT at::text, field, old_value, new_value, source, event_id, run_id FROM "
                                        "leadsync.field_changes WHERE entity = $1 AND key = $2 ORDER BY at DESC, id DESC "
                                        "LIMIT $3",
                                        entity.name, record_key, kRecentChanges)) {
      changes.push_back({{"at", text(r[0])}, {"field", text(r[1])}, {"old", nullable(r[2])}, {"new", nullable(r[3])},
                         {"source", text(r[4])}, {"event_id", text(r[5])}, {"run_id", text(r[6])}});
    }
    out["recent_changes"] = changes;
    tx.commit();
  }

  json dead = json::array();
  try {
    for (const auto& k : std::set<std::string>{key, record_key}) {
      for (auto& d : dlq_entries(config, {entity.name + "/" + k, ""}, 20)) dead.push_back(std::move(d));
    }
    out["dead_letters"] = dead;
  } catch (const std::exception& e) {
    out["dead_letters_error"] = common::redact(e.what());
  }
  return out;
}

std::string format_explain(const json& e) {
  auto s = [](const json& j) { return j.is_null() ? std::string("NULL") : j.is_string() ? j.get<std::string>() : j.dump(); };
  std::string out = e["entity"].get<std::string>() + " " + e["key"].get<std::string>();
  if (e["record_key"] != e["key"]) out += " (linked to record " + s(e["record_key"]) + ")";
  out += "\n";
  const auto& db = e["database"];
  if (!db["exists"].get<bool>()) {
    out += "  PostgreSQL: no row\n";
  } else {
    out += "  PostgreSQL: version " + s(db["version"]) + (db["deleted"].get<bool>() ? ", DELETED (tombstone)" : "") +
           ", source " + s(db["source"]) + ", origin " + s(db["origin"]) + ", synced " + s(db["synced_at"]) +
           "\n    event " + s(db["event_id"]) + "\n";
    const auto& c = db["created"];
    if (c.is_null()) {
      out += "    created: not recorded (written outside leadsync's worker)\n";
    } else {
      out += "    created " + s(c["at"]) + " by event " + s(c["event_id"]) +
             (c["version"].is_null() ? "" : ", version " + s(c["version"])) +
             (s(c["run_id"]).empty() || c["run_id"].is_null() ? "" : ", run " + s(c["run_id"])) + "\n";
    }
    for (const auto& [f, v] : db["fields"].items()) out += "    " + f + " = " + s(v) + "\n";
  }
  for (const auto& src : e["sources"]) {
    out += "  source " + s(src["source"]) + ": ";
    const auto status = src["status"].get<std::string>();
    if (status == "record") {
      out += "line " + s(src["position"]);
      const auto& differs = src["differs_from_database"];
      if (differs.empty()) {
        out += ", matches PostgreSQL\n";
      } else {
        out += ", differs from PostgreSQL in:\n";
        for (const auto& f : differs) {
          const auto name = f.get<std::string>();
          out += "    " + name + ": source " + s(src["fields"][name]) + ", PostgreSQL " + s(db["fields"][name]) + "\n";
        }
      }
    } else if (status == "rejected" || status == "unreadable") {
      out += status + " at line " + s(src.value("position", json(0))) + ": " + s(src["reason"]) + "\n";
    } else {
      out += "not in the source\n";
    }
    if (src.contains("stored_state")) {
      const auto& st = src["stored_state"];
      out += "    stored checksum " + s(st["checksum"]) + ", version " + s(st["version"]) + ", last run " +
             s(st["run_id"]) + " (" + s(st["run_status"]) + ", trigger " + s(st["run_trigger"]) + ", finished " +
             s(st["run_finished_at"]) + ")\n";
    }
  }
  out += "  identity links:" + std::string(e["identity_links"].empty() ? " none\n" : "\n");
  for (const auto& l : e["identity_links"]) {
    out += "    " + s(l["field"]) + " " + s(l["value"]) + " -> record " + s(l["key"]) + " (linked " + s(l["linked_at"]) +
           ")\n";
  }
  out += "  recent field changes:" + std::string(e["recent_changes"].empty() ? " none\n" : " (newest first)\n");
  for (const auto& c : e["recent_changes"]) {
    out += "    " + s(c["at"]) + "  " + s(c["field"]) + ": " + s(c["old"]) + " -> " + s(c["new"]) + "  (source " +
           s(c["source"]) + ", event " + s(c["event_id"]) +
           (s(c["run_id"]).empty() ? "" : ", run " + s(c["run_id"])) + ")\n";
  }
  if (e.contains("dead_letters_error")) {
    out += "  dead letters: could not be read: " + s(e["dead_letters_error"]) + "\n";
  } else {
    out += "  dead letters:" + std::string(e["dead_letters"].empty() ? " none\n" : "\n");
    for (const auto& d : e["dead_letters"]) {
      out += "    " + s(d["key"]) + " " + s(d["error_class"]) + "/" + s(d["stage"]) +
             (s(d["field"]).empty() ? "" : " field " + s(d["field"])) + " at " + s(d["failed_at"]) + ": " +
             s(d["error"]) + "\n";
    }
  }
  return out;
}

}  // namespace leadsync::ctl
