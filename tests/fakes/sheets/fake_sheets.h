// A fake Google Sheets API v4 values endpoint for tests only (sources.md "Google Sheets API v4
// values"), served by cpp-httplib on 127.0.0.1:
//   GET /v4/spreadsheets/{id}/values/{range}?majorDimension=ROWS&valueRenderOption=UNFORMATTED_VALUE
//       &dateTimeRenderOption=SERIAL_NUMBER|FORMATTED_STRING
// answers {"range","majorDimension":"ROWS","values":[...]} like the real API: the range clipped to
// the sheet's grid, trailing empty cells and rows omitted (ragged rows), empty cells in the middle
// as "", no `values` at all for an empty range, date cells as serial numbers or formatted strings.
// Auth: the X-goog-api-key header or a Bearer token (403 / 401 otherwise). Faults on demand: 429
// RESOURCE_EXHAUSTED bursts with Retry-After, a 5xx on the window that starts at a given row, and
// an edit of the sheet before the n-th request (a sheet that changes between two windows).
#pragma once

#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/local_server.h"

namespace leadsync::testing {

class FakeSheets {
 public:
  using Rows = std::vector<nlohmann::json>;  // each row a JSON array of cells; null = an empty cell

  FakeSheets(std::string spreadsheet_id, std::string api_key, std::string bearer_token = "");
  // Starts serving; base_url() is the API base for a source's `url`.
  void start();
  std::string base_url() const { return server_.url(""); }

  // A sheet's cells and the size of its grid (at least the rows given; Sheets' default is 1000).
  void set_sheet(const std::string& name, Rows rows, int64_t grid_rows = 1000);
  // Columns (0-based) formatted as date-times: FORMATTED_STRING renders their numbers as text.
  void set_date_columns(const std::string& name, std::set<std::size_t> columns);
  void add_named_range(const std::string& name, const std::string& a1);

  // The next `count` values requests answer 429 RESOURCE_EXHAUSTED with Retry-After: seconds.
  void throttle(int count, int retry_after_seconds);
  // A storm: after every answered request, the next `burst` answer 429 (0 ends the storm).
  void storm(int burst, int retry_after_seconds);
  // The next `times` requests of the window starting at sheet row `first_row` answer `status`.
  void fail_window(int64_t first_row, int status, int times);
  // Runs `edit` on the sheet's rows just before the n-th (1-based) values request is served.
  void before_request(int n, const std::string& sheet, std::function<void(Rows&)> edit);

  int requests() const;                     // values requests received, faults included
  int throttled() const;                    // of which answered 429
  std::vector<std::string> ranges() const;  // the decoded range of each request, in order

 private:
  struct Sheet {
    Rows rows;
    int64_t grid_rows = 1000;
    std::set<std::size_t> date_columns;
  };
  void handle(const httplib::Request& req, httplib::Response& res);
  static void error(httplib::Response& res, int status, const std::string& code, const std::string& message);

  std::string spreadsheet_id_, api_key_, bearer_token_;
  mutable std::mutex mu_;
  std::map<std::string, Sheet> sheets_;
  std::vector<std::string> sheet_order_;
  std::map<std::string, std::string> named_;
  int throttle_left_ = 0, retry_after_ = 1, storm_burst_ = 0;
  std::map<int64_t, std::pair<int, int>> failures_;  // first row -> (status, times left)
  std::map<int, std::pair<std::string, std::function<void(Rows&)>>> edits_;
  int requests_ = 0, throttled_ = 0;
  std::vector<std::string> ranges_;
  common::LocalServer server_;
};

}  // namespace leadsync::testing
