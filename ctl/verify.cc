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
        index_.push_back(static_cast<std::size_t>(&f - entity.fields.data()));
        raw_.push_back(f);
        raw_.back().required = false;
        raw_.back().normalize = common::Normalize::kNone;
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

  // Where the entries decode from (their images, for the visitor).
  void set_source(const SortedSource* source) { source_ = source; }

  // Every source entry and the row (if any) that share one match key.
  void group(const std::vector<FlatEntry>& entries, const RawRow* row) {
    bool kept = false, compared = false;
    seen_.clear();
    for (const auto& e : entries) {
      if (e.kind != SourceEntry::Kind::kRecord) {
        kept = true;  // the producer keeps a record it cannot map: not compared, and not gone
        continue;
      }
      if (std::find(seen_.begin(), seen_.end(), e.key) != seen_.end()) {
        --report_.source_records;  // a duplicate key: the producer rejects the later row
        ++report_.rejected_records;
        continue;
      }
      seen_.push_back(e.key);
      compared = true;
      compare(e, row);
    }
    if (row && row->from_source && !row->deleted) {
      ++report_.database_records;
      if (!compared && !kept) {
        ++report_.extra_in_database;
        const std::string key(row->key);
        sample(report_.extra_samples, key);
        emit({Drift::Kind::kExtra, key, key, {}, nullptr, row->version});
      }
    }
  }

 private:
  void sample(std::vector<std::string>& v, std::string_view key) const {
    if (v.size() < options_.samples) v.emplace_back(key);
  }
  void emit(const Drift& d) const {
    if (visit_) visit_(d);
  }
  const common::ChangeEvent* image(const FlatEntry& e) {
    if (!visit_) return nullptr;
    source_->image(e.encoded, image_);
    return &image_;
  }

  // The source's value against PostgreSQL's text of it: what common::same_value says of the
  // source's Value and common::value_from_sql_text(field, text), without building either where
  // the comparison is plain (text, a NULL, an int, a timestamp).
  bool same(const FlatValue& v, std::size_t i, const RawField& db) const {
    using common::Value;
    if (v.kind == FlatValue::kAbsent) return false;
    if (db.null) return v.kind == Value::kNullValue;
    const auto& field = *fields_[i];
    std::optional<Value> theirs;
    switch (field.type) {
      case common::FieldType::kText: return v.kind == Value::kStringValue && v.bytes == db.text;
      case common::FieldType::kInt:
      case common::FieldType::kFloat:
      case common::FieldType::kTimestamp:
      case common::FieldType::kDate: {
        std::string error;
        theirs = common::coerce_text(raw_[i], db.text, error);  // value_from_sql_text's own reading
        if (theirs && theirs->kind_case() == v.kind) {
          if (v.kind == Value::kIntValue) return theirs->int_value() == v.number;
          if (v.kind == Value::kTimestampMicros) return theirs->timestamp_micros() == v.number;
        }
        break;
      }
      default: theirs = common::value_from_sql_text(field, db.text);
    }
    return theirs && common::same_value(to_value(v), *theirs);
  }

  void compare(const FlatEntry& e, const RawRow* row) {
    if (!row) {
      ++report_.missing_in_database;
      sample(report_.missing_samples, e.key);
      if (visit_) emit({Drift::Kind::kMissing, std::string(e.key), "", {}, image(e), 0});
      return;
    }
    if (row->deleted) {
      ++report_.deleted_in_database;
      sample(report_.deleted_samples, e.key);
      if (visit_) emit({Drift::Kind::kDeleted, std::string(e.key), std::string(row->key), {}, image(e), row->version});
      return;
    }
    differing_.clear();
    for (std::size_t i = 0; i < fields_.size(); ++i) {
      if (!same(e.values[index_[i]], i, row->values[i])) {
        const auto& name = fields_[i]->name;
        auto& drift = report_.fields[name];
        ++drift.count;
        sample(drift.sample_keys, e.key);
        differing_.push_back(name);
      }
    }
    if (differing_.empty()) {
      ++report_.matching;
    } else if (visit_) {
      emit({Drift::Kind::kFields, std::string(e.key), std::string(row->key), differing_, image(e), row->version});
    }
  }

  const VerifyOptions& options_;
  const DriftVisitor& visit_;
  VerifyReport& report_;
  const SortedSource* source_ = nullptr;
  std::vector<const common::FieldConfig*> fields_;
  std::vector<std::size_t> index_;      // per compared field: its place in the entity (FlatEntry::values)
  std::vector<common::FieldConfig> raw_;  // per compared field: as value_from_sql_text reads numbers and times
  std::vector<std::string_view> seen_;
  std::vector<std::string> differing_;
  common::ChangeEvent image_;
};

// One pass: with `stream`, the source as it comes (throws NotInKeyOrder if it is not in key order).
VerifyReport verify_pass(const common::Config& config, const common::SourceConfig& source,
                         const VerifyOptions& options, const DriftVisitor& visit, bool stream) {
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
  std::set<std::string> row_keys;  // with --key: the rows those keys meet
  for (const auto& k : options.keys) {
    const auto l = links.find(k);
    row_keys.insert(l == links.end() ? k : l->second);
  }
  // The table read starts now, on its own connection and thread: PostgreSQL reads and sorts while
  // the source is mapped and sorted here.
  TableStream table(*conn, config, entity, source.name, merge.fields(), row_keys);

  SortedSourceOptions source_options;
  source_options.memory_budget = options.memory_budget;
  source_options.keys = options.keys;
  source_options.stream = stream;
  SortedSource snapshot(config, source, links, source_options);
  merge.set_source(&snapshot);

  std::string_view entry;
  RawRow row;
  bool have_entry = snapshot.next_encoded(entry), have_row = table.next(row);
  std::string key, bytes;  // the group's key and its entries' bytes (the runs' buffers move on)
  std::vector<std::size_t> ends;
  std::vector<FlatEntry> group;
  while (have_entry || have_row) {
    // The smaller key of the two heads; both when equal.
    const bool take_row = have_row && (!have_entry || row.key.compare(SortedSource::match_key(entry)) <= 0);
    key.assign(take_row ? row.key : SortedSource::match_key(entry));
    bytes.clear();
    ends.clear();
    while (have_entry && SortedSource::match_key(entry) == key) {
      bytes.append(entry);
      ends.push_back(bytes.size());
      have_entry = snapshot.next_encoded(entry);
    }
    group.resize(ends.size());
    for (std::size_t i = 0, begin = 0; i < ends.size(); begin = ends[i++]) {
      snapshot.decode(std::string_view(bytes).substr(begin, ends[i] - begin), group[i]);
    }
    merge.group(group, take_row ? &row : nullptr);
    if (take_row) have_row = table.next(row);
  }
  // Final only now when streamed; the merge took the duplicates off already.
  report.source_records += snapshot.records();
  report.rejected_records += snapshot.rejected();
  return report;
}

}  // namespace

VerifyReport verify_source(const common::Config& config, const common::SourceConfig& source,
                           const VerifyOptions& options, const DriftVisitor& visit) {
  // A source in key order (a sheet sorted by its key) is compared as it is read: nothing sorted,
  // nothing spilled. Any other is found out at its first entry out of order, and read again
  // through the external sort. Not with a visitor: what it was told cannot be taken back.
  if (!visit) {
    try {
      return verify_pass(config, source, options, visit, true);
    } catch (const NotInKeyOrder&) {
    }
  }
  return verify_pass(config, source, options, visit, false);
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
