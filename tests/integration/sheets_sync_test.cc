// kind: sheets end to end (issue 8): the fake Sheets API (tests/fakes/sheets) -> the Sheets adapter
// -> the real broker -> a worker -> PostgreSQL, checked field by field against the values the test
// put into the sheet: serial dates, numbers (an int field, a phone number stored as a number),
// ragged rows and empty cells in the middle. A 429 storm slows a sync and loses nothing; a window
// that keeps failing fails the run with the status and the redacted URL, and nothing of it is
// published as if complete (no deletes, stored state not advanced).
//
// DISABLED_SheetsVsCsv100k is the closing note's figure, run on demand (the command is in README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include "bench/gen/lead_data.h"
#include "common/csv.h"
#include "common/mapping.h"
#include "common/pg.h"
#include "producers/sync_run.h"
#include "tests/fakes/sheets/fake_sheets.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr const char* kSheetId = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms";
constexpr const char* kKey = "AIzaSyIntegrationKey0123456789";
constexpr const char* kKeyEnv = "LEADSYNC_TEST_SHEETS_KEY";
constexpr int64_t kEpochMs = 1'767'225'600'000;  // 2026-01-01T00:00:00Z

// What row i of the test sheet holds, and so what PostgreSQL must hold for lead S-i.
struct Lead {
  std::string id, first, last, email, phone, company, status, assignee, sources;
  int64_t score = 0;
  int64_t created_ms = 0;
  std::optional<int64_t> updated_ms;
  std::string notes;
  json phone_cell;
};

Lead lead(int i) {
  Lead l;
  char id[16];
  std::snprintf(id, sizeof id, "S-%06d", i);
  l.id = id;
  l.first = "Ann" + std::to_string(i % 50);
  l.last = "Lee";
  l.email = "lead" + std::to_string(i) + "@example.test";
  if (i % 3 == 0) {  // stored as a number in the sheet: must arrive without ".0"
    l.phone = std::to_string(4915100000000LL + i);
    l.phone_cell = 4915100000000.0 + i;
  } else {
    l.phone = "+49 151 " + std::to_string(i);
    l.phone_cell = l.phone;
  }
  l.company = i % 7 == 0 ? "" : "Co " + std::to_string(i % 100);  // empty cells in the middle
  l.status = i % 2 ? "new" : "won";
  l.assignee = "agent" + std::to_string(i % 10) + "@x.test";
  l.sources = i % 2 ? "{web,referral}" : "{web}";
  l.score = i % 100;
  l.created_ms = kEpochMs + int64_t{i} * 61'001;
  if (i % 5 != 0) l.updated_ms = l.created_ms + 3'600'000 + i;
  if (i % 4 == 0) l.notes = "note " + std::to_string(i);  // ragged: most rows end before Notes
  return l;
}

double serial(int64_t ms) { return 25569.0 + static_cast<double>(ms) / 86'400'000.0; }

FakeSheets::Rows sheet(int rows) {
  FakeSheets::Rows out{json::array({"Lead ID", "First name", "Last name", "Email", "Phone", "Company", "Status",
                                    "Assignee", "Lead sources", "Score", "Created at", "Updated at", "Notes"})};
  for (int i = 1; i <= rows; ++i) {
    const auto l = lead(i);
    json row = json::array({l.id, l.first, l.last, l.email, l.phone_cell, l.company.empty() ? json() : json(l.company),
                            l.status, l.assignee, i % 2 ? "web, referral" : "web", static_cast<double>(l.score),
                            serial(l.created_ms), l.updated_ms ? json(serial(*l.updated_ms)) : json(), l.notes});
    while (!row.empty() && (row.back().is_null() || row.back() == "")) row.erase(row.size() - 1);
    out.push_back(std::move(row));
  }
  return out;
}

// The example config with its source turned into a kind: sheets source reading the fake.
common::Config sheets_config(const std::string& tag, const std::string& base_url, int64_t window_rows,
                             int attempts = 5) {
  auto config = isolated_example_config(unique_tag(tag));
  auto& source = config.sources.at(0);
  source.kind = "sheets";
  source.url = base_url;
  source.http.max_attempts = attempts;
  source.http.backoff_base = 50ms;
  common::SheetsSettings sh;
  sh.spreadsheet_id = kSheetId;
  sh.range = "Leads!A1:M";
  sh.window_rows = window_rows;
  sh.credential_env = kKeyEnv;
  const auto& entity = config.entities.at(source.entity);
  for (const auto& [column, field] : source.columns) {
    if (const auto* f = entity.field(field)) sh.column_types.emplace(column, f->type);
  }
  source.settings = sh;
  return config;
}

class SheetsSync : public ::testing::Test {
 protected:
  void SetUp() override {
    setenv(kKeyEnv, kKey, 1);
    fake_.start();
  }

  // One run; waits until the worker has accounted for every event it published.
  producers::RunReport sync(const common::Config& config, pqxx::connection& conn) {
    common::KafkaProducer kafka(config.kafka);
    producers::SyncRunner runner(config, kafka, nullptr);
    auto report = runner.run(config.sources.at(0));
    const auto published = static_cast<int64_t>(report.events_published);
    EXPECT_TRUE(eventually([&] { return accounted_events(conn, report.run_id) >= published; }, 180s))
        << accounted_events(conn, report.run_id) << " of " << published << " events applied";
    return report;
  }

  // Every lead 1..rows in the target table, field by field.
  void expect_table(const common::Config& config, pqxx::connection& conn, int rows) {
    pqxx::work tx(conn);
    const auto result = tx.exec(
        "SELECT lead_id, first_name, last_name, email, phone, coalesce(company, ''), status, assignee, "
        "lead_sources::text, score, (extract(epoch FROM created_at) * 1000)::bigint, "
        "(extract(epoch FROM updated_at) * 1000)::bigint, coalesce(notes, ''), company IS NULL "
        "FROM " + common::qualified(conn, config.postgres.schema, "leads") + " ORDER BY lead_id");
    ASSERT_EQ(result.size(), static_cast<std::size_t>(rows));
    int mismatches = 0;
    for (int i = 1; i <= rows && mismatches < 10; ++i) {
      const auto& r = result[static_cast<pqxx::result::size_type>(i - 1)];
      const auto l = lead(i);
      const auto before = ::testing::Test::HasFailure();
      EXPECT_EQ(r[0].as<std::string>(), l.id);
      EXPECT_EQ(r[1].as<std::string>(), l.first) << l.id;
      EXPECT_EQ(r[2].as<std::string>(), l.last) << l.id;
      EXPECT_EQ(r[3].as<std::string>(), l.email) << l.id;
      EXPECT_EQ(r[4].as<std::string>(), l.phone) << l.id;
      EXPECT_EQ(r[5].as<std::string>(), l.company) << l.id;
      EXPECT_EQ(r[13].as<bool>(), l.company.empty()) << l.id << ": an empty cell is NULL";
      EXPECT_EQ(r[6].as<std::string>(), l.status) << l.id;
      EXPECT_EQ(r[7].as<std::string>(), l.assignee) << l.id;
      EXPECT_EQ(r[8].as<std::string>(), l.sources) << l.id;
      EXPECT_EQ(r[9].as<int64_t>(), l.score) << l.id;
      EXPECT_EQ(r[10].as<int64_t>(), l.created_ms) << l.id;
      EXPECT_EQ(r[11].is_null() ? std::optional<int64_t>() : std::optional(r[11].as<int64_t>()), l.updated_ms) << l.id;
      EXPECT_EQ(r[12].as<std::string>(), l.notes) << l.id;
      if (!before && ::testing::Test::HasFailure()) ++mismatches;
    }
  }

  FakeSheets fake_{kSheetId, kKey};
};

TEST_F(SheetsSync, R1_AFiftyThousandRowSheetArrivesFieldByField) {
  constexpr int kRows = 50'000;
  fake_.set_sheet("Leads", sheet(kRows), kRows + 500);
  const auto config = sheets_config("sheets50k", fake_.base_url(), 5'000);
  IsolatedEnvironment env(config);
  WorkerThread worker(config);
  auto conn = connect(config);
  const auto report = sync(config, *conn);
  ASSERT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
  EXPECT_EQ(report.rows_read, static_cast<uint64_t>(kRows));
  EXPECT_EQ(report.new_records, static_cast<uint64_t>(kRows));
  EXPECT_EQ(report.failed_records, 0u) << report.message;
  EXPECT_EQ(fake_.requests(), 11) << "windows of 5,000 rows up to the grid's end (row 50,500)";
  expect_table(config, *conn, kRows);
}

TEST_F(SheetsSync, A429StormSlowsTheSyncAndLosesNothing) {
  constexpr int kRows = 10'000;
  fake_.set_sheet("Leads", sheet(kRows), kRows);
  fake_.storm(1, 1);  // every request is first refused with Retry-After: 1
  const auto config = sheets_config("sheets429", fake_.base_url(), 1'000);
  IsolatedEnvironment env(config);
  WorkerThread worker(config);
  auto conn = connect(config);
  fake_.throttle(2, 1);
  const auto started = std::chrono::steady_clock::now();
  const auto report = sync(config, *conn);
  const auto seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  ASSERT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
  EXPECT_GE(fake_.throttled(), 11) << "two refusals before the first window and one before every other";
  EXPECT_GE(seconds, fake_.throttled() * 1.0) << "each 429 waited its Retry-After";
  EXPECT_EQ(report.new_records, static_cast<uint64_t>(kRows));
  expect_table(config, *conn, kRows);
}

TEST_F(SheetsSync, R13_AWindowPastItsRetriesFailsTheRunWithTheStatusAndPublishesNoDeletes) {
  constexpr int kRows = 10'000;
  fake_.set_sheet("Leads", sheet(kRows), kRows);
  const auto config = sheets_config("sheets500", fake_.base_url(), 2'000, 2);
  IsolatedEnvironment env(config);
  WorkerThread worker(config);
  auto conn = connect(config);
  ASSERT_EQ(sync(config, *conn).status, common::RunStatus::kCompleted);

  fake_.fail_window(4'000, 500, 1'000);  // the window after the first two, on every attempt
  const auto before = high_watermarks(config.kafka, config.kafka.topic);
  const auto failed = sync(config, *conn);
  EXPECT_EQ(failed.status, common::RunStatus::kFailed);
  EXPECT_NE(failed.message.find("HTTP 500 after 2 attempts"), std::string::npos) << failed.message;
  EXPECT_NE(failed.message.find("/v4/spreadsheets/***/values/"), std::string::npos) << failed.message;
  EXPECT_EQ(failed.message.find(kSheetId), std::string::npos) << failed.message;
  EXPECT_EQ(failed.message.find(kKey), std::string::npos) << failed.message;
  EXPECT_EQ(failed.deleted_records, 0u);
  for (const auto& m : read_messages(config.kafka, config.kafka.topic, before,
                                     high_watermarks(config.kafka, config.kafka.topic))) {
    common::ChangeEvent e;
    ASSERT_TRUE(e.ParseFromString(m.value));
    EXPECT_NE(e.op(), leadsync::v1::OP_DELETE) << e.key() << " deleted by a failed read";
  }
  pqxx::work tx(*conn);
  const auto row = tx.exec_params1("SELECT status, message FROM leadsync.sync_runs WHERE run_id = $1", failed.run_id);
  EXPECT_EQ(row[0].as<std::string>(), "failed");
  EXPECT_NE(row[1].as<std::string>().find("HTTP 500"), std::string::npos) << row[1].as<std::string>();
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM leadsync.source_state WHERE source = $1",
                            config.sources.at(0).name)[0].as<int64_t>(),
            kRows);
  tx.commit();
  expect_table(config, *conn, kRows);  // every row still there, unchanged
}

// The closing note's figure (issue 8): 100,000 generated leads (bench/gen, seed 42) synced from the
// fake Sheets API and, as a CSV file, by the CSV adapter, each into a fresh schema with one worker;
// three times each, medians printed. Both tables must end identical. Not run by default:
//   ./build/tests/sheets_sync_tests --gtest_also_run_disabled_tests --gtest_filter='*SheetsVsCsv100k'
TEST_F(SheetsSync, DISABLED_SheetsVsCsv100k) {
  constexpr uint64_t kRows = 100'000;
  TempDir dir;
  const auto csv_path = dir.file("leads.csv");
  {
    std::ofstream out(csv_path, std::ios::binary);
    bench::write_lead_sheet(out, 42, kRows);
  }
  // The same rows as the Sheets API would type them: numbers, serial dates, empty cells as null.
  FakeSheets::Rows rows;
  {
    std::ifstream in(csv_path, std::ios::binary);
    common::CsvReader reader(in);
    common::CsvRecord record;
    std::optional<common::CsvError> error;
    while (reader.next(record, error)) {
      json row = json::array();
      for (std::size_t c = 0; c < record.cells.size(); ++c) {
        const auto& cell = record.cells[c];
        const bool header = rows.empty();
        if (!header && (c == bench::kCreatedAt || c == bench::kUpdatedAt) && !cell.empty()) {
          row.push_back(25569.0 + static_cast<double>(*common::parse_timestamp_micros(cell)) / 86'400e6);
        } else if (!header && c == bench::kScore && !cell.empty()) {
          row.push_back(std::stod(cell));
        } else {
          row.push_back(cell.empty() ? json() : json(cell));
        }
      }
      while (!row.empty() && row.back().is_null()) row.erase(row.size() - 1);
      rows.push_back(std::move(row));
    }
  }
  fake_.set_sheet("Leads", std::move(rows), 0);

  struct Timing {
    double producer = 0, applied = 0;
  };
  auto measure = [&](common::Config config, std::string& table_digest) {
    IsolatedEnvironment env(config);
    WorkerThread worker(config);
    auto conn = connect(config);
    const auto started = std::chrono::steady_clock::now();
    const auto report = sync(config, *conn);
    Timing t{report.seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()};
    EXPECT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
    EXPECT_EQ(report.new_records, kRows) << report.message;
    pqxx::work tx(*conn);
    const auto table = common::qualified(*conn, config.postgres.schema, "leads");
    table_digest = tx.exec1("SELECT md5(string_agg(t::text, '|' ORDER BY lead_id)) FROM (SELECT lead_id, first_name, "
                            "last_name, email, phone, company, status, assignee, lead_sources, score, created_at, "
                            "updated_at, notes FROM " + table + ") t")[0]
                       .as<std::string>();
    return t;
  };
  std::vector<Timing> sheets_runs, csv_runs;
  std::string sheets_digest, csv_digest;
  for (int rep = 0; rep < 3; ++rep) {
    sheets_runs.push_back(measure(sheets_config("bench_sheets", fake_.base_url(), 10'000), sheets_digest));
    auto csv = isolated_example_config(unique_tag("bench_csv"));
    csv.sources.at(0).url = csv_path;
    csv_runs.push_back(measure(csv, csv_digest));
    EXPECT_EQ(sheets_digest, csv_digest) << "the Sheets and the CSV sync must produce the same table";
  }
  auto median = [](std::vector<Timing> v, double Timing::*field) {
    std::sort(v.begin(), v.end(), [&](const Timing& a, const Timing& b) { return a.*field < b.*field; });
    return v[v.size() / 2].*field;
  };
  std::printf("100,000 rows, medians of 3: sheets producer run %.2f s, applied %.2f s; csv producer run %.2f s, "
              "applied %.2f s (runs: sheets",
              median(sheets_runs, &Timing::producer), median(sheets_runs, &Timing::applied),
              median(csv_runs, &Timing::producer), median(csv_runs, &Timing::applied));
  for (const auto& t : sheets_runs) std::printf(" %.2f/%.2f", t.producer, t.applied);
  std::printf("; csv");
  for (const auto& t : csv_runs) std::printf(" %.2f/%.2f", t.producer, t.applied);
  std::printf(")\n");
}

}  // namespace
}  // namespace leadsync::testing
