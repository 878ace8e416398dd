#include "ctl/verify.h"

#include <filesystem>
#include <unordered_map>

#include "common/mapping.h"
#include "common/pg.h"
#include "producers/mapper.h"
#include "producers/sync_run.h"

namespace leadsync::ctl {
namespace {

constexpr std::size_t kSamples = 5;

void sample(std::vector<std::string>& v, const std::string& key) {
  if (v.size() < kSamples) v.push_back(key);
}

}  // namespace

VerifyReport verify_source(const common::Config& config, const common::SourceConfig& source) {
  const auto& entity = config.entity(source.entity);
  VerifyReport report;
  report.source = source.name;

  // The database side: every row of the table, as typed values, by key.
  struct DbRow {
    std::vector<std::optional<common::Value>> values;
    bool deleted = false;
    bool from_source = false;
    bool seen = false;
  };
  std::unordered_map<std::string, DbRow> rows;
  std::unordered_map<std::string, std::string> linked;
  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  {
    pqxx::work tx(*conn);
    tx.exec("SET LOCAL TimeZone = 'UTC'");
    tx.exec("SET LOCAL DateStyle = 'ISO'");
    std::string cols = conn->quote_name(entity.key);
    for (const auto& f : entity.fields) cols += ", " + conn->quote_name(f.name) + "::text";
    // A row that partial events made before its full image arrived is not a record yet (README).
    tx.exec_params("DECLARE verify_cursor NO SCROLL CURSOR FOR SELECT " + cols + ", _deleted, _source = $1 FROM " +
                       common::qualified(*conn, config.postgres.schema, entity.table) +
                       (entity.partial_events ? " WHERE NOT _incomplete" : ""),
                   source.name);
    for (;;) {
      const auto result = tx.exec("FETCH 20000 FROM verify_cursor");
      if (result.empty()) break;
      for (const auto& r : result) {
        DbRow row;
        row.values.reserve(entity.fields.size());
        for (std::size_t i = 0; i < entity.fields.size(); ++i) {
          const auto& field = r[static_cast<int>(i) + 1];
          if (field.is_null()) {
            common::Value null;
            null.set_null_value(true);
            row.values.emplace_back(null);
          } else {
            row.values.push_back(common::value_from_sql_text(entity.fields[i], field.c_str()));
          }
        }
        const int n = static_cast<int>(entity.fields.size());
        row.deleted = r[n + 1].as<bool>();
        row.from_source = !r[n + 2].is_null() && r[n + 2].as<bool>();
        rows.emplace(r[0].as<std::string>(), std::move(row));
      }
    }
    // Keys linked to another record by an alternate key (R1) are found under that record.
    const auto links = tx.exec_params(
        "SELECT value, key FROM leadsync.identities WHERE entity = $1 AND field = '_key'", entity.name);
    for (const auto& l : links) linked.emplace(l[0].as<std::string>(), l[1].as<std::string>());
    tx.commit();
  }

  // The source side, mapped exactly as the producer maps it.
  auto adapter = producers::make_adapter(source, std::filesystem::temp_directory_path().string());
  adapter->open();
  producers::Mapper mapper(source, entity, *adapter);
  producers::SourceRecord record;
  std::optional<std::string> parse_error;
  common::ChangeEvent event;
  producers::RowError row_error;
  while (adapter->next(record, parse_error)) {
    if (producers::Mapper::is_blank(record)) continue;
    if (parse_error || !mapper.map(record, event, row_error)) {
      ++report.rejected_records;
      continue;
    }
    ++report.source_records;
    auto it = rows.find(event.key());
    if (it == rows.end()) {
      if (const auto link = linked.find(event.key()); link != linked.end()) it = rows.find(link->second);
    }
    if (it == rows.end() || it->second.deleted) {
      ++report.missing_in_database;
      sample(report.missing_samples, event.key());
      if (it != rows.end()) it->second.seen = true;
      continue;
    }
    it->second.seen = true;
    bool same = true;
    for (std::size_t i = 0; i < entity.fields.size(); ++i) {
      const auto& f = entity.fields[i];
      const auto& db = it->second.values[i];
      const auto& src = event.fields().at(f.name);
      if (!db || !common::same_value(src, *db)) {
        auto& drift = report.fields[f.name];
        ++drift.count;
        sample(drift.sample_keys, event.key());
        same = false;
      }
    }
    if (same) ++report.matching;
  }
  for (const auto& [key, row] : rows) {
    if (!row.from_source || row.deleted) continue;
    ++report.database_records;
    if (!row.seen) {
      ++report.extra_in_database;
      sample(report.extra_samples, key);
    }
  }
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

}  // namespace leadsync::ctl
