// The kind: sheets adapter against the fake Sheets API (tests/fakes/sheets) on loopback: its
// configuration, windows, ragged rows and empty cells, a missing `values`, header rules shared with
// CSV, 429 bursts and a failing window, a sheet edited between two windows, named ranges, auth.
#include "producers/sheets/sheets_source.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "common/config.h"
#include "common/errors.h"
#include "producers/mapper.h"
#include "producers/registry.h"
#include "tests/fakes/sheets/fake_sheets.h"

namespace leadsync::producers {
namespace {

using nlohmann::json;
using testing::FakeSheets;

constexpr const char* kId = "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms";

struct Env {
  Env() { setenv("SHEETS_TEST_KEY", "AIzaTestKey123", 1); }
};

std::string yaml(const std::string& url, const std::string& sheets_section, const std::string& extra = "",
                 const std::string& http = "{attempts: 3}") {
  return R"(
entities:
  lead:
    key: lead_id
    fields:
      email: {type: text}
      phone: {type: text}
      score: {type: int}
      signed_up: {type: timestamp}
      birthday: {type: date}
sources:
  - name: api-sheet
    kind: sheets
    entity: lead
    url: )" + url + R"(
    key_column: id
    columns: {id: lead_id, Email: email, Phone: phone, Score: score, Signed up: signed_up, Birthday: birthday}
    http: )" + http + R"(
    sheets: )" + sheets_section + "\n" + extra;
}

struct Read {
  std::vector<std::string> columns;
  std::vector<SourceRecord> records;
};

Read read_all(const common::Config& config) {
  auto adapter = make_adapter(config.sources.at(0), "/tmp");
  Read out;
  adapter->open();
  out.columns = adapter->columns();
  SourceRecord r;
  std::optional<std::string> error;
  while (adapter->next(r, error)) {
    EXPECT_FALSE(error) << *error;
    out.records.push_back(r);
  }
  return out;
}

std::string failure_of(const common::Config& config) {
  try {
    read_all(config);
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

FakeSheets::Rows leads(int n) {
  FakeSheets::Rows rows{json::array({"id", "Email", "Phone", "Score", "Signed up", "Birthday"})};
  for (int i = 1; i <= n; ++i) {
    rows.push_back(json::array({"L" + std::to_string(i), "l" + std::to_string(i) + "@x.test", 4915100000000 + i, i * 1.0,
                                46023.5 + i, 30000 + i}));
  }
  return rows;
}

class SheetsSourceTest : public ::testing::Test {
 protected:
  Env env;
  FakeSheets fake{kId, "AIzaTestKey123"};
  void SetUp() override { fake.start(); }
  common::Config config(const std::string& section, const std::string& extra = "") {
    return common::parse_config(yaml(fake.base_url(), section, extra));
  }
};

TEST_F(SheetsSourceTest, ReadsInWindowsThatOverlapByOneRowUntilTheGridEnds) {
  fake.set_sheet("Leads", leads(11), 0);
  const auto got = read_all(config(R"({spreadsheet_id: )" + std::string(kId) +
                                   R"(, range: "Leads!A1:F", window_rows: 5, api_key_env: SHEETS_TEST_KEY})"));
  EXPECT_EQ(got.columns, (std::vector<std::string>{"id", "Email", "Phone", "Score", "Signed up", "Birthday"}));
  ASSERT_EQ(got.records.size(), 11u);
  for (std::size_t i = 0; i < 11; ++i) {
    EXPECT_EQ(got.records[i].position, i + 2) << "positions are sheet rows";
    EXPECT_EQ(got.records[i].cells[0], "L" + std::to_string(i + 1));
  }
  EXPECT_EQ(got.records[0].cells[2], "4915100000001") << "a phone number stored as a number keeps no .0";
  EXPECT_EQ(got.records[0].cells[3], "1");
  EXPECT_EQ(got.records[0].cells[4], "2026-01-02T12:00:00.000000Z");
  EXPECT_EQ(got.records[0].cells[5], "1982-02-19");
  // The first window is rows 1..5; each later one repeats the row before it and adds 5 more.
  EXPECT_EQ(fake.ranges(), (std::vector<std::string>{"'Leads'!A1:F5", "'Leads'!A5:F10", "'Leads'!A10:F15"}));
}

TEST_F(SheetsSourceTest, RaggedRowsEmptyMiddleCellsAndBlankWindowsInsideTheGrid) {
  FakeSheets::Rows rows{json::array({"id", "Email", "Phone", "Score"}),
                        json::array({"L1", "a@x.test"}),                    // ragged: trailing cells missing
                        json::array({"L2", nullptr, nullptr, 7}),           // empty cells in the middle
                        json::array(),                                      // a blank row
                        json::array({"L3", "c@x.test", "0301", 3})};
  fake.set_sheet("Leads", rows, 12);  // the grid has 7 blank rows below the data
  const auto got = read_all(config(R"({spreadsheet_id: )" + std::string(kId) +
                                   R"(, range: Leads, window_rows: 3, api_key_env: SHEETS_TEST_KEY})"));
  ASSERT_EQ(got.records.size(), 4u);
  EXPECT_EQ(got.records[0].cells, (std::vector<std::string>{"L1", "a@x.test"}));
  EXPECT_EQ(got.records[1].cells, (std::vector<std::string>{"L2", "", "", "7"}));
  EXPECT_TRUE(got.records[2].cells.empty());
  EXPECT_EQ(got.records[3].position, 5u);
  EXPECT_EQ(got.records[3].cells[2], "0301") << "text stays text";
  EXPECT_EQ(fake.ranges(), (std::vector<std::string>{"'Leads'!1:3", "'Leads'!3:6", "'Leads'!6:9", "'Leads'!9:12",
                                                     "'Leads'!12:15"}))
      << "windows continue through blank rows to the end of the grid (row 12)";
}

TEST_F(SheetsSourceTest, AnEmptyRangeHasNoValuesAndNoColumns) {
  fake.set_sheet("Leads", {}, 1000);
  const auto cfg = config(R"({spreadsheet_id: )" + std::string(kId) + R"(, range: "Leads!A1:F", api_key_env: SHEETS_TEST_KEY})");
  auto adapter = make_adapter(cfg.sources.at(0), "/tmp");
  adapter->open();
  EXPECT_TRUE(adapter->columns().empty());
  SourceRecord r;
  std::optional<std::string> error;
  EXPECT_FALSE(adapter->next(r, error));
  // The mapper then refuses to sync, exactly as for an empty CSV file (no "delete everything").
  EXPECT_THROW(Mapper(cfg.sources.at(0), cfg.entities.at("lead"), *adapter), std::runtime_error);
}

TEST_F(SheetsSourceTest, HeaderRulesAreTheCsvAdaptersOwn) {
  fake.set_sheet("Leads", {json::array({" id ", "Email", "", "Email"}), json::array({"L1", "a", "b", "c"})}, 0);
  const auto cfg = config(R"({spreadsheet_id: )" + std::string(kId) + R"(, range: Leads, api_key_env: SHEETS_TEST_KEY})");
  auto adapter = make_adapter(cfg.sources.at(0), "/tmp");
  adapter->open();
  EXPECT_EQ(adapter->columns()[0], "id") << "trimmed like a CSV header";
  EXPECT_TRUE(adapter->is_duplicate_column("Email"));
  const auto warnings = adapter->column_warnings();
  ASSERT_EQ(warnings.size(), 2u);
  EXPECT_EQ(warnings, common::describe_header_issues(common::parse_csv_header({" id ", "Email", "", "Email"})));
}

TEST_F(SheetsSourceTest, A429BurstIsBackedOffAndLosesNothing) {
  fake.set_sheet("Leads", leads(9), 0);
  fake.throttle(2, 1);
  const auto started = std::chrono::steady_clock::now();
  const auto got = read_all(config(R"({spreadsheet_id: )" + std::string(kId) +
                                   R"(, range: "Leads!A1:F", window_rows: 5, api_key_env: SHEETS_TEST_KEY})"));
  EXPECT_EQ(got.records.size(), 9u);
  EXPECT_EQ(fake.throttled(), 2);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::seconds(2)) << "Retry-After: 1 honoured twice";
}

TEST_F(SheetsSourceTest, A500OnOneWindowIsRetriedAndOnePastTheRetriesFailsTheReadWithoutSecrets) {
  fake.set_sheet("Leads", leads(9), 0);
  fake.fail_window(5, 500, 2);
  EXPECT_EQ(read_all(config(R"({spreadsheet_id: )" + std::string(kId) +
                            R"(, range: "Leads!A1:F", window_rows: 5, api_key_env: SHEETS_TEST_KEY})"))
                .records.size(),
            9u);
  fake.fail_window(5, 500, 3);  // the source allows 3 attempts
  const auto what = failure_of(config(R"({spreadsheet_id: )" + std::string(kId) +
                                      R"(, range: "Leads!A1:F", window_rows: 5, api_key_env: SHEETS_TEST_KEY})"));
  EXPECT_NE(what.find("HTTP 500 after 3 attempts"), std::string::npos) << what;
  EXPECT_NE(what.find("/v4/spreadsheets/***/values/"), std::string::npos) << what;
  EXPECT_NE(what.find("nothing was deleted"), std::string::npos) << what;
  EXPECT_EQ(what.find(kId), std::string::npos) << what;
  EXPECT_EQ(what.find("AIzaTestKey123"), std::string::npos) << what;
}

TEST_F(SheetsSourceTest, ASheetEditedBetweenTwoWindowsIsNoticed) {
  fake.set_sheet("Leads", leads(12), 0);
  // Before the second window: a row is inserted above the boundary, shifting every row below it.
  fake.before_request(2, "Leads", [](FakeSheets::Rows& rows) {
    rows.insert(rows.begin() + 2, json::array({"NEW", "new@x.test"}));
  });
  const auto what = failure_of(config(R"({spreadsheet_id: )" + std::string(kId) +
                                      R"(, range: "Leads!A1:F", window_rows: 5, api_key_env: SHEETS_TEST_KEY})"));
  EXPECT_NE(what.find("the sheet changed during the read: row 5 differs"), std::string::npos) << what;
}

TEST_F(SheetsSourceTest, ANamedRangeIsReadInOneRequest) {
  fake.set_sheet("Leads", leads(20), 0);
  fake.add_named_range("LeadTable", "'Leads'!A1:F21");
  const auto got = read_all(config(R"({spreadsheet_id: )" + std::string(kId) +
                                   R"(, named_range: LeadTable, window_rows: 5, api_key_env: SHEETS_TEST_KEY})"));
  EXPECT_EQ(got.records.size(), 20u);
  EXPECT_EQ(fake.ranges(), std::vector<std::string>{"LeadTable"});
}

TEST_F(SheetsSourceTest, FormattedStringDatesArriveAsTheSheetShowsThem) {
  fake.set_sheet("Leads", leads(2), 0);
  fake.set_date_columns("Leads", {4, 5});
  const auto got = read_all(config(R"({spreadsheet_id: )" + std::string(kId) +
                                   R"(, range: "Leads!A1:F", dates: formatted_string, api_key_env: SHEETS_TEST_KEY})"));
  ASSERT_EQ(got.records.size(), 2u);
  EXPECT_EQ(got.records[0].cells[4], "2026-01-02 12:00:00");
  EXPECT_EQ(got.records[0].cells[5], "1982-02-19 00:00:00");
}

TEST_F(SheetsSourceTest, CredentialsComeFromTheEnvironmentAndAreSent) {
  fake.set_sheet("Leads", leads(1), 0);
  auto what = failure_of(config(R"({spreadsheet_id: )" + std::string(kId) + R"(, range: Leads, api_key_env: NO_SUCH_VAR_X})"));
  EXPECT_NE(what.find("NO_SUCH_VAR_X (sheets.api_key_env) is not set"), std::string::npos) << what;
  setenv("SHEETS_TEST_WRONG", "AIzaWrong", 1);
  what = failure_of(config(R"({spreadsheet_id: )" + std::string(kId) + R"(, range: Leads, api_key_env: SHEETS_TEST_WRONG})"));
  EXPECT_NE(what.find("HTTP 403"), std::string::npos) << what;
  EXPECT_EQ(what.find("AIzaWrong"), std::string::npos) << what;
  FakeSheets with_token(kId, "", "ya29.tok");
  with_token.set_sheet("Leads", leads(3), 0);
  with_token.start();
  setenv("SHEETS_TEST_TOKEN", "ya29.tok", 1);
  EXPECT_EQ(read_all(common::parse_config(yaml(with_token.base_url(), R"({spreadsheet_id: )" + std::string(kId) +
                                                                          R"(, range: Leads, token_env: SHEETS_TEST_TOKEN})")))
                .records.size(),
            3u);
}

std::string config_error(const std::string& section, const std::string& http = "{attempts: 3}") {
  try {
    common::parse_config(yaml("http://127.0.0.1:9", section, "", http));
  } catch (const common::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SheetsConfig, TheSectionIsValidatedAndColumnTypesComeFromTheEntity) {
  const auto c = common::parse_config(yaml("http://127.0.0.1:9/", R"({spreadsheet_id: abc, range: "Leads!A1:F", api_key_env: K})",
                                           "    schedule: 5m\n"));
  const auto& sh = std::get<common::SheetsSettings>(c.sources.at(0).settings);
  EXPECT_EQ(sh.spreadsheet_id, "abc");
  EXPECT_EQ(sh.dates, common::SheetsDates::kSerialNumber);
  EXPECT_EQ(sh.window_rows, 10'000);
  EXPECT_EQ(sh.auth, common::SheetsAuth::kApiKey);
  EXPECT_EQ(sh.credential_env, "K");
  EXPECT_EQ(sh.column_types.at("Signed up"), common::FieldType::kTimestamp);
  EXPECT_EQ(sh.column_types.at("Birthday"), common::FieldType::kDate);
  EXPECT_EQ(sh.column_types.at("Score"), common::FieldType::kInt);
  EXPECT_FALSE(sh.column_types.count("id")) << "the key column fills no field";
  auto e = config_error(R"({spreadsheet_id: abc, range: "Leads!A1:F"})");
  EXPECT_NE(e.find("exactly one of api_key_env, token_env and service_account_env"), std::string::npos) << e;
  e = config_error(R"({spreadsheet_id: abc, range: L, named_range: N, token_env: T})");
  EXPECT_NE(e.find("exactly one of range"), std::string::npos) << e;
  e = config_error(R"({spreadsheet_id: abc, range: L, token_env: T, dates: excel})");
  EXPECT_NE(e.find("sources[0].sheets.dates"), std::string::npos) << e;
  e = config_error(R"({spreadsheet_id: abc, range: L, token_env: T, api_key: AIzaInline})");
  EXPECT_NE(e.find("sources[0].sheets.api_key"), std::string::npos) << "no key for an inline secret: " << e;
  e = config_error(R"({spreadsheet_id: abc, range: L, token_env: T})", "{rate_limit: 60/day}");
  EXPECT_NE(e.find("sources[0].http.rate_limit"), std::string::npos) << e;
  e = config_error(R"({spreadsheet_id: abc, range: L, token_env: T, window_rows: 1})");
  EXPECT_NE(e.find("sources[0].sheets.window_rows"), std::string::npos) << e;
  const auto limited = common::parse_config(
      yaml("http://127.0.0.1:9", R"({spreadsheet_id: abc, range: L, token_env: T})", "", "{rate_limit: 60/min}"));
  EXPECT_DOUBLE_EQ(limited.sources.at(0).http.max_requests_per_second, 1.0);
}

}  // namespace
}  // namespace leadsync::producers
