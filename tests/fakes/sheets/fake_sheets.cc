#include "tests/fakes/sheets/fake_sheets.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <regex>

namespace leadsync::testing {
namespace {

// "A" -> 0, "AB" -> 27.
std::size_t column_index(const std::string& letters) {
  std::size_t n = 0;
  for (const char c : letters) n = n * 26 + static_cast<std::size_t>(c - 'A' + 1);
  return n - 1;
}

std::string column_name(std::size_t index) {
  std::string s;
  for (std::size_t n = index + 1; n > 0; n = (n - 1) / 26) s.insert(s.begin(), static_cast<char>('A' + (n - 1) % 26));
  return s;
}

bool empty_cell(const nlohmann::json& c) { return c.is_null() || (c.is_string() && c.get<std::string>().empty()); }

// How a sheet with the number format "yyyy-mm-dd hh:mm:ss" shows a serial date.
std::string formatted_date(double serial) {
  using namespace std::chrono;
  const auto secs = static_cast<long long>(std::llround((serial - 25569.0) * 86400.0));
  const sys_seconds t{seconds{secs}};
  const auto day = floor<days>(t);
  const year_month_day ymd{day};
  const hh_mm_ss hms{t - day};
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u %02lld:%02lld:%02lld", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                static_cast<long long>(hms.hours().count()), static_cast<long long>(hms.minutes().count()),
                static_cast<long long>(hms.seconds().count()));
  return buf;
}

}  // namespace

FakeSheets::FakeSheets(std::string spreadsheet_id, std::string api_key, std::string bearer_token)
    : spreadsheet_id_(std::move(spreadsheet_id)), api_key_(std::move(api_key)), bearer_token_(std::move(bearer_token)) {
  server_.routes().Get(R"(/v4/spreadsheets/([^/]+)/values/(.+))",
                       [this](const httplib::Request& req, httplib::Response& res) { handle(req, res); });
}

void FakeSheets::start() { server_.start(); }

void FakeSheets::set_sheet(const std::string& name, Rows rows, int64_t grid_rows) {
  std::lock_guard lock(mu_);
  if (!sheets_.count(name)) sheet_order_.push_back(name);
  auto& s = sheets_[name];
  s.grid_rows = std::max<int64_t>(grid_rows, static_cast<int64_t>(rows.size()));
  s.rows = std::move(rows);
}

void FakeSheets::set_date_columns(const std::string& name, std::set<std::size_t> columns) {
  std::lock_guard lock(mu_);
  sheets_[name].date_columns = std::move(columns);
}

void FakeSheets::add_named_range(const std::string& name, const std::string& a1) {
  std::lock_guard lock(mu_);
  named_[name] = a1;
}

void FakeSheets::throttle(int count, int retry_after_seconds) {
  std::lock_guard lock(mu_);
  throttle_left_ = count;
  retry_after_ = retry_after_seconds;
}

void FakeSheets::storm(int burst, int retry_after_seconds) {
  std::lock_guard lock(mu_);
  storm_burst_ = burst;
  retry_after_ = retry_after_seconds;
}

void FakeSheets::fail_window(int64_t first_row, int status, int times) {
  std::lock_guard lock(mu_);
  failures_[first_row] = {status, times};
}

void FakeSheets::before_request(int n, const std::string& sheet, std::function<void(Rows&)> edit) {
  std::lock_guard lock(mu_);
  edits_[n] = {sheet, std::move(edit)};
}

int FakeSheets::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

int FakeSheets::throttled() const {
  std::lock_guard lock(mu_);
  return throttled_;
}

std::vector<std::string> FakeSheets::ranges() const {
  std::lock_guard lock(mu_);
  return ranges_;
}

void FakeSheets::error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", {{"code", status}, {"message", message}, {"status", code}}}}.dump(),
                  "application/json");
}

void FakeSheets::handle(const httplib::Request& req, httplib::Response& res) {
  std::lock_guard lock(mu_);
  ++requests_;
  std::string range = req.matches[2];
  ranges_.push_back(range);
  if (const auto it = edits_.find(requests_); it != edits_.end()) it->second.second(sheets_[it->second.first].rows);
  const auto auth = req.get_header_value("Authorization");
  const bool key_ok = !api_key_.empty() && req.get_header_value("X-goog-api-key") == api_key_;
  const bool token_ok = !bearer_token_.empty() && auth == "Bearer " + bearer_token_;
  if (!key_ok && !token_ok) {
    if (!auth.empty()) return error(res, 401, "UNAUTHENTICATED", "Request had invalid authentication credentials.");
    return error(res, 403, "PERMISSION_DENIED", "The caller does not have permission");
  }
  if (req.matches[1] != spreadsheet_id_) return error(res, 404, "NOT_FOUND", "Requested entity was not found.");
  if (req.get_param_value("majorDimension") != "ROWS" ||
      req.get_param_value("valueRenderOption") != "UNFORMATTED_VALUE") {
    return error(res, 400, "INVALID_ARGUMENT", "this fake serves majorDimension=ROWS, valueRenderOption=UNFORMATTED_VALUE");
  }
  const auto dates = req.get_param_value("dateTimeRenderOption");
  if (dates != "SERIAL_NUMBER" && dates != "FORMATTED_STRING") {
    return error(res, 400, "INVALID_ARGUMENT", "Invalid dateTimeRenderOption");
  }
  if (throttle_left_ > 0) {
    --throttle_left_;
    ++throttled_;
    res.set_header("Retry-After", std::to_string(retry_after_));
    return error(res, 429, "RESOURCE_EXHAUSTED",
                 "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute per user'");
  }
  if (const auto it = named_.find(range); it != named_.end()) range = it->second;
  if (sheets_.count(range)) range = "'" + std::regex_replace(range, std::regex("'"), "''") + "'!1:" + std::to_string(sheets_[range].grid_rows);
  static const std::regex a1(R"(^(?:(?:'((?:[^']|'')+)'|([^'!]+))!)?(?:([A-Z]*)([0-9]*):([A-Z]*)([0-9]*))?$)");
  std::smatch m;
  if (!std::regex_match(range, m, a1)) return error(res, 400, "INVALID_ARGUMENT", "Unable to parse range: " + range);
  std::string name = m[1].matched ? std::regex_replace(m[1].str(), std::regex("''"), "'") : m[2].str();
  if (name.empty() && !sheet_order_.empty()) name = sheet_order_.front();
  const auto sheet_it = sheets_.find(name);
  if (sheet_it == sheets_.end()) return error(res, 400, "INVALID_ARGUMENT", "Unable to parse range: " + range);
  const Sheet& sheet = sheet_it->second;
  const int64_t first_row = m[4].length() ? std::stoll(m[4]) : 1;
  if (const auto f = failures_.find(first_row); f != failures_.end() && f->second.second > 0) {
    --f->second.second;
    return error(res, f->second.first, "INTERNAL", "Internal error encountered.");
  }
  std::size_t width = 1;
  for (const auto& row : sheet.rows) width = std::max(width, row.size());
  const std::size_t first_col = m[3].length() ? column_index(m[3]) : 0;
  const std::size_t last_col = m[5].length() ? column_index(m[5]) : width - 1;
  const int64_t last_row = std::min<int64_t>(m[6].length() ? std::stoll(m[6]) : sheet.grid_rows, sheet.grid_rows);
  nlohmann::json values = nlohmann::json::array();
  for (int64_t r = first_row; r <= last_row; ++r) {
    nlohmann::json out = nlohmann::json::array();
    if (r - 1 < static_cast<int64_t>(sheet.rows.size())) {
      const auto& row = sheet.rows[static_cast<std::size_t>(r - 1)];
      for (std::size_t c = first_col; c <= last_col && c < row.size(); ++c) {
        const auto& cell = row[c];
        if (dates == "FORMATTED_STRING" && cell.is_number() && sheet.date_columns.count(c)) {
          out.push_back(formatted_date(cell.get<double>()));
        } else {
          out.push_back(cell.is_null() ? nlohmann::json("") : cell);
        }
      }
      while (!out.empty() && empty_cell(out.back())) out.erase(out.size() - 1);  // ragged: trailing empties omitted
    }
    values.push_back(std::move(out));
  }
  while (!values.empty() && values.back().empty()) values.erase(values.size() - 1);  // trailing empty rows omitted
  nlohmann::json body = {{"range", (m[1].matched ? "'" + m[1].str() + "'" : name) + "!" + column_name(first_col) +
                                       std::to_string(first_row) + ":" + column_name(last_col) + std::to_string(last_row)},
                         {"majorDimension", "ROWS"}};
  if (!values.empty()) body["values"] = std::move(values);
  res.set_content(body.dump(), "application/json");
  throttle_left_ = storm_burst_;
}

}  // namespace leadsync::testing
