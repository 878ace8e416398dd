#include "producers/sheets/sheets_source.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <stdexcept>

namespace leadsync::producers {
namespace {

// Sheets caps a spreadsheet at 10 million cells: no grid has more rows than this, so a server that
// never says where its grid ends cannot keep a read going forever.
constexpr int64_t kMaxSheetRows = 10'000'000;

const char* env_key_name(common::SheetsAuth auth) {
  switch (auth) {
    case common::SheetsAuth::kBearerToken:
      return "token_env";
    case common::SheetsAuth::kServiceAccount:
      return "service_account_env";
    case common::SheetsAuth::kApiKey:
      break;
  }
  return "api_key_env";
}

}  // namespace

SheetsSource::SheetsSource(const common::SourceConfig& config, const common::SheetsSettings& settings)
    : config_(config), settings_(settings), base_(config.url.empty() ? kDefaultBase : config.url), http_(config.http) {
  while (!base_.empty() && base_.back() == '/') base_.pop_back();
}

std::vector<std::pair<std::string, std::string>> SheetsSource::auth_headers() {
  const char* value = std::getenv(settings_.credential_env.c_str());
  if (!value || !*value) {
    throw std::runtime_error("source " + config_.name + ": the environment variable " + settings_.credential_env +
                             " (sheets." + env_key_name(settings_.auth) + ") is not set");
  }
  switch (settings_.auth) {
    case common::SheetsAuth::kApiKey:
      return {{"X-goog-api-key", value}};
    case common::SheetsAuth::kBearerToken:
      return {{"Authorization", std::string("Bearer ") + value}};
    case common::SheetsAuth::kServiceAccount:
      if (!tokens_) {
        tokens_ = std::make_unique<common::GoogleTokenSource>(common::load_service_account_key(value),
                                                              common::kSheetsReadonlyScope, config_.http);
      }
      return {{"Authorization", tokens_->authorization()}};
  }
  return {};
}

nlohmann::json SheetsSource::get(const std::string& a1) {
  const auto url = base_ + "/v4/spreadsheets/" + common::percent_encode(settings_.spreadsheet_id) + "/values/" +
                   common::percent_encode(a1, "!:") + "?majorDimension=ROWS&valueRenderOption=UNFORMATTED_VALUE&dateTimeRenderOption=" +
                   (settings_.dates == common::SheetsDates::kSerialNumber ? "SERIAL_NUMBER" : "FORMATTED_STRING");
  const auto where = "source " + config_.name + ": reading " + a1 + " (window " + std::to_string(windows_ + 1) + ")";
  common::HttpResponse response;
  try {
    try {
      response = http_.fetch({common::HttpMethod::kGet, url, auth_headers(), {}});
    } catch (const common::HttpError& e) {
      if (e.status() != 401 || !tokens_) throw;
      tokens_->invalidate();  // revoked or expired early: one more try with a fresh token
      response = http_.fetch({common::HttpMethod::kGet, url, auth_headers(), {}});
    }
  } catch (const common::HttpError& e) {
    throw std::runtime_error(where + " failed: " + e.what() +
                             "; the read is incomplete, so nothing was deleted and the next run reads it again");
  }
  auto doc = nlohmann::json::parse(response.body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw std::runtime_error(where + ": the answer is not a JSON object");
  if (const auto it = doc.find("majorDimension"); it != doc.end() && *it != "ROWS") {
    throw std::runtime_error(where + ": the answer's majorDimension is not ROWS");
  }
  if (const auto it = doc.find("values"); it != doc.end() && !it->is_array()) {
    throw std::runtime_error(where + ": the answer's values are not a list of rows");
  }
  return doc;
}

bool SheetsSource::fetch_window() {
  if (last_window_) return false;
  const bool first = windows_ == 0;
  nlohmann::json doc;
  int64_t from = 0, to = 0;
  if (!range_) {
    doc = get(settings_.named_range);
    last_window_ = true;
  } else {
    // Every window after the first repeats the previous window's last row (see the header).
    from = first ? range_->first_row : next_first_ - 1;
    to = (first ? range_->first_row - 1 : next_first_ - 1) + settings_.window_rows;
    if (range_->last_row) to = std::min(to, *range_->last_row);
    doc = get(sheets::window_a1(*range_, from, to));
    const auto grid_end = doc.contains("range") && doc["range"].is_string()
                              ? sheets::last_row_of(doc["range"].get<std::string>())
                              : std::nullopt;
    const auto returned = doc.contains("values") ? static_cast<int64_t>(doc["values"].size()) : 0;
    last_window_ = (grid_end ? *grid_end < to : returned < to - from + 1) ||
                   (range_->last_row && to >= *range_->last_row) || to >= kMaxSheetRows;
  }
  ++windows_;
  nlohmann::json rows = doc.contains("values") ? std::move(doc["values"]) : nlohmann::json::array();
  if (range_) {
    if (!first) {
      const auto seen = rows.empty() ? nlohmann::json::array() : rows[0];
      if (seen != boundary_) {
        throw std::runtime_error(
            "source " + config_.name + ": the sheet changed during the read: row " + std::to_string(from) +
            " differs between two windows (rows were inserted, deleted or edited meanwhile); nothing was deleted "
            "and the next run reads the sheet again");
      }
      if (!rows.empty()) rows.erase(rows.begin());
    }
    const auto window_rows = to - (first ? from : from + 1) + 1;
    boundary_ = static_cast<int64_t>(rows.size()) == window_rows ? rows.back() : nlohmann::json::array();
    row_number_ = first ? from : from + 1;
    next_first_ = to + 1;
  } else {
    row_number_ = 1;  // positions in a named range count from its first row
  }
  rows_ = std::move(rows);
  row_index_ = 0;
  return true;
}

std::string SheetsSource::open() {
  if (settings_.named_range.empty()) {
    range_ = sheets::parse_a1(settings_.range);
    if (!range_) {
      throw std::runtime_error("source " + config_.name + ": sheets.range '" + settings_.range +
                               "' is not an A1 range this adapter can read (e.g. 'Leads!A1:H', 'Leads!A:H', 'Leads'); "
                               "use named_range for a named range");
    }
  }
  windows_ = 0;
  last_window_ = false;
  fetch_window();
  std::vector<std::string> names;
  if (!rows_.empty() && rows_[0].is_array()) {
    for (const auto& cell : rows_[0]) names.push_back(sheets::cell_text(cell, std::nullopt, settings_.dates));
    row_index_ = 1;
  }
  set_header(names);  // the CSV adapter's header rules
  types_.clear();
  for (const auto& name : columns()) {
    const auto it = settings_.column_types.find(name);
    types_.push_back(it == settings_.column_types.end() ? std::nullopt : std::optional(it->second));
  }
  return "";  // no cheap fingerprint: the API gives neither a hash nor a revision of the values
}

bool SheetsSource::next(SourceRecord& out, std::optional<std::string>& error) {
  while (row_index_ >= rows_.size()) {
    if (!fetch_window()) return false;
  }
  const auto& row = rows_[row_index_];
  out.position = static_cast<std::size_t>(row_number_) + row_index_;
  ++row_index_;
  out.kind = CellKind::kText;
  out.cells.clear();
  out.values.clear();
  out.key.clear();
  out.source_version.reset();
  out.op = RecordOp::kUpsert;
  error.reset();
  if (!row.is_array()) {
    error = "row " + std::to_string(out.position) + ": not a list of cells";
    return true;
  }
  // Ragged rows: the mapper reads a missing trailing cell as empty.
  for (std::size_t i = 0; i < row.size(); ++i) {
    out.cells.push_back(sheets::cell_text(row[i], i < types_.size() ? types_[i] : std::nullopt, settings_.dates));
  }
  return true;
}

double SheetsSource::progress() const {
  if (last_window_) return rows_.empty() ? 1.0 : static_cast<double>(row_index_) / static_cast<double>(rows_.size());
  if (!range_ || !range_->last_row) return 0;  // the grid's size is unknown until its last window
  const auto span = static_cast<double>(*range_->last_row - range_->first_row + 1);
  return std::min(1.0, static_cast<double>(row_number_ + static_cast<int64_t>(row_index_) - range_->first_row) / span);
}

}  // namespace leadsync::producers
