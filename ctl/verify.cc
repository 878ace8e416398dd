#include "ctl/verify.h"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "common/errors.h"
#include "common/pg.h"
#include "ctl/sorted_source.h"
#include "ctl/table_cursor.h"

namespace leadsync::ctl {
namespace {

class Merge {
 public:
  Merge(const common::EntityConfig& entity, const VerifyOptions& options, const DriftVisitor& visit,
        VerifyReport& report)
      : options_(options), visit_(visit), report_(report) {
    for (const auto& f : entity.fields) {
      // A write-back or computed field is written in PostgreSQL (by the CRM sink, by an
      // application): no source's image holds it, so there is nothing to compare it with.
      if (f.role == common::FieldRole::kWriteBack || f.role == common::FieldRole::kComputed) continue;
      if (options.fields.empty() ||
          std::find(options.fields.begin(), options.fields.end(), f.name) != options.fields.end()) {
        fields_.push_back(&f);
      }
    }
    for (const auto& name : options.fields) {
      const auto* f = entity.field(name);
      if (!f) {
        throw common::ConfigError("verify --fields: entity " + entity.name + " has no field '" + name + "'");
      }
      if (f->role == common::FieldRole::kWriteBack || f->role == common::FieldRole::kComputed) {
        throw common::ConfigError("verify --fields: field '" + name + "' of entity " + entity.name +
                                  " is written in PostgreSQL (role " +
                                  (f->role == common::FieldRole::kWriteBack ? "write_back" : "computed") +
                                  "), no source holds it to compare with");
      }
    }
  }
  const std::vector<const common::FieldConfig*>& fields() const { return fields_; }

  // Every source entry and the row (if any) that share one match key.
  void group(const std::vector<SourceEntry>& entries, const TableRow* row) {
    bool kept = false, compared = false;
    std::vector<const std::string*> seen;
    for (const auto& e : entries) {
      if (e.kind != SourceEntry::Kind::kRecord) {
        kept = true;  // the producer keeps a record it cannot map: not compared, and not gone
        continue;
      }
      const auto& key = e.event.key();
      if (std::any_of(seen.begin(), seen.end(), [&](const std::string* s) { return *s == key; })) {
        --report_.source_records;  // a duplicate key: the producer rejects the later row
        ++report_.rejected_records;
        continue;
      }
      seen.push_back(&key);
      compared = true;
      compare(e, row);
    }
    if (row && row->from_source && !row->deleted) {
      ++report_.database_records;
      if (!compared && !kept) {
        ++report_.extra_in_database;
        sample(report_.extra_samples, row->key);
        emit({Drift::Kind::kExtra, row->key, row->key, {}, nullptr, row->version});
      }
    }
  }

 private:
  void sample(std::vector<std::string>& v, const std::string& key) const {
    if (v.size() < options_.samples) v.push_back(key);
  }
  void emit(const Drift& d) const {
    if (visit_) visit_(d);
  }

  void compare(const SourceEntry& e, const TableRow* row) {
    const auto& key = e.event.key();
    if (!row) {
      ++report_.missing_in_database;
      sample(report_.missing_samples, key);
      emit({Drift::Kind::kMissing, key, "", {}, &e.event, 0});
      return;
    }
    if (row->deleted) {
      ++report_.deleted_in_database;
      sample(report_.deleted_samples, key);
      emit({Drift::Kind::kDeleted, key, row->key, {}, &e.event, row->version});
      return;
    }
    Drift d{Drift::Kind::kFields, key, row->key, {}, &e.event, row->version};
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      const auto& name = fields_[i]->name;
      const auto it = e.event.fields().find(name);
      const auto& db = row->values[i];
      if (it == e.event.fields().end() || !db || !common::same_value(it->second, *db)) {
        auto& drift = report_.fields[name];
        ++drift.count;
        sample(drift.sample_keys, key);
        d.fields.push_back(name);
      }
    }
    if (d.fields.empty()) {
      ++report_.matching;
    } else {
      emit(d);
    }
  }

  const VerifyOptions& options_;
  const DriftVisitor& visit_;
  VerifyReport& report_;
  std::vector<const common::FieldConfig*> fields_;
};

}  // namespace

VerifyReport verify_source(const common::Config& config, const common::SourceConfig& source,
                           const VerifyOptions& options, const DriftVisitor& visit) {
  const auto& entity = config.entity(source.entity);
  VerifyReport report;
  report.source = source.name;
  Merge merge(entity, options, visit, report);

  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  std::unordered_map<std::string, std::string> links;
  {
    pqxx::work tx(*conn);
    links = identity_links(tx, entity.name);
  }
  SortedSourceOptions source_options;
  source_options.memory_budget = options.memory_budget;
  source_options.keys = options.keys;
  SortedSource snapshot(config, source, links, source_options);
  report.source_records = snapshot.records();
  report.rejected_records = snapshot.rejected();

  std::set<std::string> row_keys;  // with --key: the rows those keys meet
  for (const auto& k : options.keys) {
    const auto l = links.find(k);
    row_keys.insert(l == links.end() ? k : l->second);
  }
  TableCursor table(*conn, config, entity, source.name, merge.fields(), row_keys);

  SourceEntry entry;
  TableRow row;
  bool have_entry = snapshot.next(entry), have_row = table.next(row);
  std::vector<SourceEntry> group;
  while (have_entry || have_row) {
    // The smaller key of the two heads; both when equal.
    const bool take_row = have_row && (!have_entry || row.key.compare(entry.match_key) <= 0);
    const std::string key = take_row ? row.key : entry.match_key;
    group.clear();
    while (have_entry && entry.match_key == key) {
      group.push_back(std::move(entry));
      have_entry = snapshot.next(entry);
    }
    merge.group(group, take_row ? &row : nullptr);
    if (take_row) have_row = table.next(row);
  }
  table.transaction().commit();
  return report;
}

std::string format_report(const VerifyReport& r) {
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  };
  std::string out = "verify " + r.source + ": " + std::to_string(r.source_records) + " source records, " +
                    std::to_string(r.database_records) + " live database rows from this source, " +
                    std::to_string(r.matching) + " matching\n";
  if (r.rejected_records) {
    out += "  rejected by the mapping (not compared): " + std::to_string(r.rejected_records) + "\n";
  }
  if (r.missing_in_database) {
    out += "  missing in the database: " + std::to_string(r.missing_in_database) + " (e.g. " +
           join(r.missing_samples) + ")\n";
  }
  if (r.deleted_in_database) {
    out += "  deleted in the database but still in the source: " + std::to_string(r.deleted_in_database) +
           " (e.g. " + join(r.deleted_samples) + ")\n";
  }
  if (r.extra_in_database) {
    out += "  in the database but gone from the source: " + std::to_string(r.extra_in_database) + " (e.g. " +
           join(r.extra_samples) + ")\n";
  }
  for (const auto& [field, d] : r.fields) {
    out += "  field " + field + ": " + std::to_string(d.count) + " record(s) differ (e.g. " + join(d.sample_keys) +
           ")\n";
  }
  out += r.drift() ? "  result: DRIFT\n" : "  result: PostgreSQL matches the source\n";
  return out;
}

std::string report_json(const VerifyReport& r) {
  nlohmann::json fields = nlohmann::json::object();
  for (const auto& [name, d] : r.fields) fields[name] = {{"mismatches", d.count}, {"sample_keys", d.sample_keys}};
  return nlohmann::json{{"source", r.source},
                        {"source_records", r.source_records},
                        {"rejected_records", r.rejected_records},
                        {"database_records", r.database_records},
                        {"matching", r.matching},
                        {"missing", {{"count", r.missing_in_database}, {"sample_keys", r.missing_samples}}},
                        {"deleted_in_database", {{"count", r.deleted_in_database}, {"sample_keys", r.deleted_samples}}},
                        {"extra", {{"count", r.extra_in_database}, {"sample_keys", r.extra_samples}}},
                        {"fields", fields},
                        {"drift", r.drift()}}
      .dump();
}

}  // namespace leadsync::ctl
