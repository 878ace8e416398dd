#include "producers/sheets/sheets_values.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/mapping.h"

namespace leadsync::producers::sheets {
namespace {

constexpr double kUnixEpochSerial = 25569;  // 1970-01-01 counted from 1899-12-30
constexpr double kMaxExactInteger = 9007199254740992.0;  // 2^53

}  // namespace

std::string number_text(double v) {
  if (std::isfinite(v) && v == std::trunc(v) && std::fabs(v) < kMaxExactInteger) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

int64_t serial_to_micros(double serial) {
  const double millis = std::round((serial - kUnixEpochSerial) * 86'400'000.0);
  return static_cast<int64_t>(millis) * 1000;
}

std::string serial_text(double serial, common::FieldType type) {
  const auto micros = serial_to_micros(serial);
  if (type == common::FieldType::kDate) return common::format_date(micros);
  // format_timestamp_micros gives "2026-01-02 03:04:05.123456+00"; the mapper reads ISO 8601.
  auto text = common::format_timestamp_micros(micros);
  text[10] = 'T';
  return text.substr(0, text.size() - 3) + "Z";
}

std::string cell_text(const nlohmann::json& cell, std::optional<common::FieldType> type, common::SheetsDates dates) {
  switch (cell.type()) {
    case nlohmann::json::value_t::string:
      return cell.get_ref<const std::string&>();
    case nlohmann::json::value_t::boolean:
      return cell.get<bool>() ? "true" : "false";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float: {
      const bool serial = dates == common::SheetsDates::kSerialNumber && type &&
                          (*type == common::FieldType::kTimestamp || *type == common::FieldType::kDate);
      if (serial) return serial_text(cell.get<double>(), *type);
      if (cell.is_number_integer()) return cell.dump();  // exact, even beyond 2^53
      return number_text(cell.get<double>());
    }
    case nlohmann::json::value_t::null:
      return "";
    default:
      return cell.dump();  // not in the contract; shown as JSON so the row error names it
  }
}

std::optional<A1Range> parse_a1(std::string_view text) {
  A1Range out;
  std::string rest(text);
  if (const auto bang = text.rfind('!'); bang != std::string_view::npos) {
    auto sheet = std::string(text.substr(0, bang));
    if (sheet.size() >= 2 && sheet.front() == '\'' && sheet.back() == '\'') {
      sheet = sheet.substr(1, sheet.size() - 2);
      for (auto at = sheet.find("''"); at != std::string::npos; at = sheet.find("''", at + 1)) sheet.erase(at, 1);
    }
    if (sheet.empty() || bang + 1 == text.size()) return std::nullopt;
    out.sheet = sheet;
    rest = std::string(text.substr(bang + 1));
  }
  static const std::regex cells(R"(([A-Za-z]{1,3})([0-9]*):([A-Za-z]{1,3})([0-9]*))");
  static const std::regex rows(R"(([0-9]+):([0-9]+))");
  std::smatch m;
  auto upper = [](std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  if (std::regex_match(rest, m, cells)) {
    out.first_column = upper(m[1]);
    out.last_column = upper(m[3]);
    if (m[2].length()) out.first_row = std::stoll(m[2]);
    if (m[4].length()) out.last_row = std::stoll(m[4]);
  } else if (std::regex_match(rest, m, rows)) {
    out.first_row = std::stoll(m[1]);
    out.last_row = std::stoll(m[2]);
  } else if (out.sheet.empty() && !rest.empty()) {
    out.sheet = rest;  // a bare name: the whole sheet
  } else if (!rest.empty()) {
    return std::nullopt;
  }
  if (out.first_row < 1 || (out.last_row && *out.last_row < out.first_row)) return std::nullopt;
  return out;
}

std::string window_a1(const A1Range& range, int64_t first, int64_t last) {
  std::string out;
  if (!range.sheet.empty()) {
    out = "'";
    for (const char c : range.sheet) out += c == '\'' ? std::string("''") : std::string(1, c);
    out += "'!";
  }
  return out + range.first_column + std::to_string(first) + ":" + range.last_column + std::to_string(last);
}

std::optional<int64_t> last_row_of(std::string_view response_range) {
  auto cells = response_range.substr(response_range.rfind('!') == std::string_view::npos ? 0 : response_range.rfind('!') + 1);
  if (const auto colon = cells.find(':'); colon != std::string_view::npos) cells = cells.substr(colon + 1);
  std::size_t digits = cells.size();
  while (digits > 0 && std::isdigit(static_cast<unsigned char>(cells[digits - 1]))) --digits;
  if (digits == cells.size()) return std::nullopt;
  int64_t row = 0;
  std::from_chars(cells.data() + digits, cells.data() + cells.size(), row);
  return row;
}

}  // namespace leadsync::producers::sheets
