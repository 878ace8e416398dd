// R6, R9, R13 — the example sheet through the real broker into the real database: every row and
// every field lands exactly, and a second run changes nothing.
#include <gtest/gtest.h>

#include <fstream>
#include <map>

#include "common/csv.h"
#include "producers/sync_run.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

std::string trim(std::string s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
}
std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
constexpr char kSep = '\x1f';

// What the example config promises for each column of a sheet row, written out independently of
// the mapping code: NULL is represented as "<NULL>".
std::vector<std::string> expected_row(const std::vector<std::string>& cells) {
  auto cell = [&](std::size_t i) { return i < cells.size() ? cells[i] : std::string(); };
  auto or_null = [](const std::string& s) { return s.empty() ? std::string("<NULL>") : s; };
  std::string sources;
  std::string rest = cell(8);
  for (std::size_t pos; !rest.empty();) {
    pos = rest.find(',');
    const auto item = lower(trim(rest.substr(0, pos)));
    if (!item.empty()) sources += (sources.empty() ? "" : std::string(1, kSep)) + item;
    if (pos == std::string::npos) break;
    rest = rest.substr(pos + 1);
  }
  return {
      trim(cell(0)),                 // lead_id
      or_null(trim(cell(1))),        // first_name
      or_null(trim(cell(2))),        // last_name
      lower(trim(cell(3))),          // email
      or_null(trim(cell(4))),        // phone
      or_null(trim(cell(5))),        // company
      or_null(lower(trim(cell(6)))), // status
      or_null(lower(trim(cell(7)))), // assignee
      sources,                       // lead_sources ("" = empty list)
      or_null(trim(cell(9))),        // score
      or_null(trim(cell(10))),       // created_at
      or_null(trim(cell(11))),       // updated_at
      or_null(cell(12)),             // notes, as typed
  };
}

std::map<std::string, std::vector<std::string>> read_sheet(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  common::CsvReader reader(in);
  common::CsvRecord record;
  std::optional<common::CsvError> error;
  std::map<std::string, std::vector<std::string>> rows;
  bool header = true;
  while (reader.next(record, error)) {
    EXPECT_FALSE(error) << error->message;
    if (header) {
      header = false;
      continue;
    }
    auto row = expected_row(record.cells);
    rows.emplace(row[0], std::move(row));
  }
  return rows;
}

std::map<std::string, std::vector<std::string>> read_table(pqxx::connection& conn, const common::Config& config,
                                                           const std::string& source) {
  pqxx::work tx(conn);
  const auto table = common::qualified(conn, config.postgres.schema, "leads");
  const auto result = tx.exec_params(
      "SELECT lead_id, first_name, last_name, email, phone, company, status, assignee, "
      "array_to_string(lead_sources, E'\\x1f'), score::text, "
      "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), "
      "to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), notes, _deleted, _source = $1 "
      "FROM " + table,
      source);
  std::map<std::string, std::vector<std::string>> rows;
  for (const auto& r : result) {
    std::vector<std::string> row;
    for (int i = 0; i < 13; ++i) row.push_back(r[i].is_null() ? "<NULL>" : r[i].as<std::string>());
    EXPECT_FALSE(r[13].as<bool>()) << row[0] << " is marked deleted";
    EXPECT_TRUE(r[14].as<bool>()) << row[0] << " has the wrong _source";
    rows.emplace(row[0], std::move(row));
  }
  return rows;
}

std::string versions_digest(pqxx::connection& conn, const common::Config& config) {
  pqxx::work tx(conn);
  return tx.exec1("SELECT md5(string_agg(lead_id || ':' || _version || ':' || _synced_at, ',' ORDER BY lead_id)) FROM " +
                  common::qualified(conn, config.postgres.schema, "leads"))[0]
      .as<std::string>();
}

int64_t count(pqxx::connection& conn, const std::string& sql, const std::string& param) {
  pqxx::work tx(conn);
  return tx.exec_params1(sql, param)[0].as<int64_t>();
}

TEST(ExampleSync, R6_R9_SyncsEveryRowAndFieldExactlyAndASecondRunChangesNothing) {
  const auto config = isolated_example_config(unique_tag("example_sync"));
  IsolatedEnvironment env(config);
  const auto& source = config.sources.at(0);
  WorkerThread worker(config);
  common::KafkaProducer kafka(config.kafka);
  producers::SyncRunner runner(config, kafka, nullptr);
  auto conn = connect(config);

  const auto first = runner.run(source);
  ASSERT_EQ(first.status, "completed") << first.message;
  EXPECT_EQ(first.rows_read, 10'000u);
  EXPECT_EQ(first.new_records, 10'000u);
  EXPECT_EQ(first.failed_records, 0u);
  EXPECT_EQ(first.events_published, 10'000u);
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, first.run_id) >= 10'000; }, 60s));

  const auto sheet = read_sheet(source.url);
  ASSERT_EQ(sheet.size(), 10'000u);
  const auto table = read_table(*conn, config, source.name);
  ASSERT_EQ(table.size(), sheet.size());
  static const char* kColumns[] = {"lead_id", "first_name", "last_name", "email", "phone", "company", "status",
                                   "assignee", "lead_sources", "score", "created_at", "updated_at", "notes"};
  int mismatches = 0;
  for (const auto& [key, want] : sheet) {
    const auto it = table.find(key);
    ASSERT_NE(it, table.end()) << key << " missing";
    for (std::size_t i = 0; i < want.size(); ++i) {
      if (want[i] != it->second[i] && ++mismatches <= 20) {
        ADD_FAILURE() << key << "." << kColumns[i] << ": sheet '" << want[i] << "', database '" << it->second[i] << "'";
      }
    }
  }
  EXPECT_EQ(mismatches, 0);
  // Every inserted record has its creation on its row (design.md §4); a creation is no audit row
  // and no field of a new record is a change.
  const auto& lead = config.entity(source.entity);
  const auto created_rows = "SELECT count(*) FROM " + conn->quote_name(config.postgres.schema) + "." +
                            conn->quote_name(lead.table) + " WHERE _source = $1 AND _created_event IS NOT NULL";
  EXPECT_EQ(count(*conn, created_rows, source.name), 10'000);
  EXPECT_EQ(count(*conn, "SELECT count(*) FROM leadsync.field_changes WHERE source = $1", source.name), 0);

  const auto versions = versions_digest(*conn, config);
  // Second run, same sheet: recognised by the snapshot hash, nothing is published.
  const auto second = runner.run(source);
  ASSERT_EQ(second.status, "completed") << second.message;
  EXPECT_TRUE(second.snapshot_unchanged);
  EXPECT_EQ(second.unchanged_records, 10'000u);
  EXPECT_EQ(second.events_published, 0u);
  // Third run with the snapshot hash forgotten: the per-record checksums find nothing changed.
  {
    pqxx::work tx(*conn);
    tx.exec_params("UPDATE leadsync.sync_runs SET snapshot_hash = NULL WHERE source = $1", source.name);
    tx.commit();
  }
  const auto third = runner.run(source);
  ASSERT_EQ(third.status, "completed") << third.message;
  EXPECT_FALSE(third.snapshot_unchanged);
  EXPECT_EQ(third.rows_read, 10'000u);
  EXPECT_EQ(third.unchanged_records, 10'000u);
  EXPECT_EQ(third.events_published, 0u);
  std::this_thread::sleep_for(1s);  // a wrongly published event would have been applied by now
  EXPECT_EQ(versions_digest(*conn, config), versions);
  EXPECT_EQ(count(*conn, created_rows, source.name), 10'000);
  EXPECT_EQ(count(*conn, "SELECT count(*) FROM leadsync.field_changes WHERE source = $1", source.name), 0);
}

}  // namespace
}  // namespace leadsync::testing
