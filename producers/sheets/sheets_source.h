// kind: sheets — a range of a Google Sheet read with the Sheets API v4 values endpoint (sources.md
// "Google Sheets API v4 values"): majorDimension=ROWS, valueRenderOption=UNFORMATTED_VALUE and the
// configured dateTimeRenderOption. The range's first row is the header, validated by the same code
// as a CSV header (common::parse_csv_header); cells become text (sheets_values.h) that the shared
// mapper coerces, so a sheet and its CSV export map to the same events.
//
// An A1 range is read in windows of `window_rows` rows, one request each, until the sheet's grid
// ends (the response's `range` stops short of the window) or the range's last row. The API has no
// snapshot reads, so a sheet edited between two windows is *noticed*, not read consistently: each
// window after the first starts with the previous window's last row again, and when that row
// differs (rows inserted or deleted above it shifted the rest, or it was edited) the read throws.
// The run then fails without deleting anything or advancing its stored state; the next run reads
// the sheet again. A named range is read in one request.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/google_auth.h"
#include "common/http_client.h"
#include "common/source_config.h"
#include "producers/sheets/sheets_values.h"
#include "producers/header_source.h"

namespace leadsync::producers {

class SheetsSource : public HeaderRowSource {
 public:
  // The default API base when the source's `url` is empty.
  static constexpr const char* kDefaultBase = "https://sheets.googleapis.com";

  SheetsSource(const common::SourceConfig& config, const common::SheetsSettings& settings);

  std::string open() override;
  bool next(SourceRecord& out, std::optional<std::string>& error) override;
  double progress() const override;

  // Requests sent by this read (windows and their retries are the HTTP client's), for tests.
  int windows_read() const { return windows_; }

 private:
  // Fetches rows [first, last] of the range (the whole named range when not windowed) into rows_;
  // false once the range has no more rows.
  bool fetch_window();
  nlohmann::json get(const std::string& a1);
  std::vector<std::pair<std::string, std::string>> auth_headers();

  common::SourceConfig config_;
  common::SheetsSettings settings_;
  std::string base_;
  common::HttpClient http_;
  std::unique_ptr<common::GoogleTokenSource> tokens_;
  std::optional<sheets::A1Range> range_;  // nullopt: a named range, one request
  std::vector<std::optional<common::FieldType>> types_;  // by column index

  nlohmann::json rows_;         // the current window's rows (an array)
  std::size_t row_index_ = 0;   // next row of rows_ to return
  int64_t row_number_ = 0;      // the sheet row of rows_[0]
  int64_t next_first_ = 0;      // the first sheet row of the next window
  bool last_window_ = false;
  nlohmann::json boundary_;     // the last row of the previous window, as read then
  int windows_ = 0;
};

}  // namespace leadsync::producers
