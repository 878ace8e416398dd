#include "common/mapping.h"

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ctime>
#include <vector>

#include "common/text_encoding.h"

namespace leadsync::common {
namespace {

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string lower_ascii(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string normalized(const FieldConfig& f, std::string_view s) {
  switch (f.normalize) {
    case Normalize::kNone: return std::string(s);
    case Normalize::kTrim: return std::string(trim(s));
    case Normalize::kLower: return lower_ascii(s);
    case Normalize::kLowerTrim: return lower_ascii(trim(s));
  }
  return std::string(s);
}

std::string quote_value(std::string_view raw) {
  constexpr std::size_t kMax = 80;
  std::string s(utf8_prefix(raw, kMax));  // never cut inside a character: the text goes into PostgreSQL
  if (raw.size() > kMax) s += "…";
  return "'" + s + "'";
}

bool parse_digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  out = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return false;
    out = out * 10 + (s[i] - '0');
  }
  return true;
}

// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t days_from_civil(int y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

bool valid_date(int y, int m, int d) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (y < 1 || m < 1 || m > 12 || d < 1) return false;  // PostgreSQL has no year 0
  const bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return d <= kDays[m - 1] + (m == 2 && leap ? 1 : 0);
}

void put_u64(std::string& buf, uint64_t v) {
  char b[8];
  if constexpr (std::endian::native == std::endian::little) {
    std::memcpy(b, &v, 8);  // the same bytes as the loop below, in one move
  } else {
    for (int i = 0; i < 8; ++i) b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  }
  buf.append(b, 8);
}

void put_str(std::string& buf, std::string_view s) {
  put_u64(buf, s.size());
  buf.append(s);
}

}  // namespace

std::optional<int64_t> parse_timestamp_micros(std::string_view text) {
  const auto s = trim(text);
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, se = 0;
  if (!parse_digits(s, 0, 4, y) || s.size() < 10 || s[4] != '-' || !parse_digits(s, 5, 2, mo) || s[7] != '-' ||
      !parse_digits(s, 8, 2, d) || !valid_date(y, mo, d)) {
    return std::nullopt;
  }
  int64_t micros_of_day = 0;
  int64_t offset_seconds = 0;
  std::size_t pos = 10;
  if (pos < s.size()) {
    if (s[pos] != 'T' && s[pos] != ' ') return std::nullopt;
    ++pos;
    if (!parse_digits(s, pos, 2, h) || pos + 2 >= s.size() || s[pos + 2] != ':' || !parse_digits(s, pos + 3, 2, mi)) {
      return std::nullopt;
    }
    pos += 5;
    if (pos < s.size() && s[pos] == ':') {
      if (!parse_digits(s, pos + 1, 2, se)) return std::nullopt;
      pos += 3;
    }
    if (h > 23 || mi > 59 || se > 60) return std::nullopt;
    int64_t fraction = 0;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      int digits = 0;
      while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
        if (digits < 6) fraction = fraction * 10 + (s[pos] - '0');
        ++digits;
        ++pos;
      }
      if (digits == 0) return std::nullopt;
      for (int i = digits; i < 6; ++i) fraction *= 10;
    }
    micros_of_day = ((h * 60LL + mi) * 60 + se) * 1'000'000 + fraction;
    if (pos < s.size()) {
      if (s[pos] == 'Z' && pos + 1 == s.size()) {
        ++pos;
      } else if (s[pos] == '+' || s[pos] == '-') {
        int oh = 0, om = 0;
        const int sign = s[pos] == '-' ? -1 : 1;
        if (!parse_digits(s, pos + 1, 2, oh)) return std::nullopt;
        std::size_t p = pos + 3;
        if (p < s.size() && s[p] == ':') ++p;
        if (p < s.size()) {
          if (!parse_digits(s, p, 2, om)) return std::nullopt;
          p += 2;
        }
        if (p != s.size() || oh > 23 || om > 59) return std::nullopt;
        offset_seconds = sign * (oh * 3600 + om * 60);
        pos = p;
      } else {
        return std::nullopt;
      }
    }
  }
  if (pos != s.size()) return std::nullopt;
  return days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86'400'000'000LL + micros_of_day -
         offset_seconds * 1'000'000;
}

std::string format_timestamp_micros(int64_t micros) {
  int64_t secs = micros / 1'000'000;
  int64_t frac = micros % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    --secs;
  }
  const std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02d %02d:%02d:%02d.%06lld+00", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(frac));
  return buf;
}

std::string format_date(int64_t micros) { return format_timestamp_micros(micros).substr(0, 10); }

std::string normalize_text(const FieldConfig& f, std::string_view text) { return normalized(f, text); }

std::optional<Value> coerce_text(const FieldConfig& f, std::string_view raw, std::string& error) {
  Value v;
  if (!coerce_text_into(f, raw, v, error)) return std::nullopt;
  return v;
}

namespace {

// normalized() into `out`, reusing its capacity.
void normalize_into(const FieldConfig& f, std::string_view s, std::string& out) {
  if (f.normalize == Normalize::kTrim || f.normalize == Normalize::kLowerTrim) s = trim(s);
  out.assign(s.data(), s.size());
  if (f.normalize == Normalize::kLower || f.normalize == Normalize::kLowerTrim) {
    for (auto& c : out) {
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    }
  }
}

// The string of `v`'s string kind (set to it, empty, if `v` holds another kind), with its capacity.
std::string& string_slot(Value& v) {
  if (v.kind_case() != Value::kStringValue) v.set_string_value(std::string());
  return *v.mutable_string_value();
}

}  // namespace

bool coerce_text_into(const FieldConfig& f, std::string_view raw, Value& v, std::string& error) {
  const auto t = trim(raw);
  if (f.type == FieldType::kTextList) {
    auto* list = v.mutable_string_list();
    auto* values = list->mutable_values();
    values->Clear();  // keeps the strings allocated: Add() below reuses them
    std::string_view rest = raw;
    while (!rest.empty()) {
      const auto cut = rest.find(f.separator);
      const auto item = trim(rest.substr(0, cut));
      if (!item.empty()) normalize_into(f, item, *values->Add());
      if (cut == std::string_view::npos) break;
      rest.remove_prefix(cut + f.separator.size());
    }
    if (f.required && list->values_size() == 0) {
      error = "field '" + f.name + "' is required but the list is empty";
      return false;
    }
    return true;
  }
  if (t.empty() && (f.type != FieldType::kText || f.normalize == Normalize::kTrim ||
                    f.normalize == Normalize::kLowerTrim || raw.empty())) {
    if (f.required) {
      error = "field '" + f.name + "' is required but the value is empty";
      return false;
    }
    v.set_null_value(true);
    return true;
  }
  switch (f.type) {
    case FieldType::kText:
      normalize_into(f, raw, string_slot(v));
      return true;
    case FieldType::kInt: {
      int64_t n = 0;
      const auto* end = t.data() + t.size();
      const auto* begin = t.data() + (t.front() == '+' ? 1 : 0);
      if (begin != end && (*begin == '+' || (begin != t.data() && *begin == '-'))) {
        error = "field '" + f.name + "' expects an integer, got " + quote_value(raw);
        return false;  // "+-5": one sign only
      }
      auto [p, ec] = std::from_chars(begin, end, n);
      if (ec != std::errc() || p != end) {
        // Spreadsheets often render whole numbers as "42.0".
        double d = 0;
        auto [p2, ec2] = std::from_chars(begin, end, d);
        if (ec2 == std::errc() && p2 == end && std::isfinite(d) && d == std::trunc(d) && std::fabs(d) < 9.0e15) {
          v.set_int_value(static_cast<int64_t>(d));
          return true;
        }
        error = "field '" + f.name + "' expects an integer, got " + quote_value(raw);
        return false;
      }
      v.set_int_value(n);
      return true;
    }
    case FieldType::kFloat: {
      double d = 0;
      const auto* end = t.data() + t.size();
      const auto* begin = t.data() + (t.front() == '+' ? 1 : 0);
      auto [p, ec] = std::from_chars(begin, end, d);
      if (ec != std::errc() || p != end || !std::isfinite(d) || (begin != t.data() && *begin == '-')) {
        error = "field '" + f.name + "' expects a number, got " + quote_value(raw);
        return false;
      }
      v.set_double_value(d);
      return true;
    }
    case FieldType::kBool: {
      const auto l = lower_ascii(t);
      if (l == "true" || l == "yes" || l == "y" || l == "1") {
        v.set_bool_value(true);
      } else if (l == "false" || l == "no" || l == "n" || l == "0") {
        v.set_bool_value(false);
      } else {
        error = "field '" + f.name + "' expects true/false, got " + quote_value(raw);
        return false;
      }
      return true;
    }
    case FieldType::kTimestamp:
    case FieldType::kDate: {
      const auto micros = parse_timestamp_micros(t);
      if (!micros || (f.type == FieldType::kDate && t.size() != 10)) {
        error = "field '" + f.name + "' expects a " +
                (f.type == FieldType::kDate ? std::string("date (YYYY-MM-DD)")
                                            : std::string("timestamp (YYYY-MM-DD HH:MM:SS, ISO 8601)")) +
                ", got " + quote_value(raw);
        return false;
      }
      v.set_timestamp_micros(*micros);
      return true;
    }
    case FieldType::kJson:
      // jsonb refuses what is not JSON, and \u0000 in a string: say so here, as a row error.
      if (!nlohmann::json::accept(t) || t.find("\\u0000") != std::string_view::npos) {
        error = "field '" + f.name + "' expects JSON, got " + quote_value(raw);
        return false;
      }
      v.set_json_value(std::string(t));
      return true;
    case FieldType::kTextList:
      break;
  }
  error = "field '" + f.name + "' has an unsupported type";
  return false;
}

std::string check_value(const FieldConfig& f, const Value& v) {
  if (v.kind_case() == Value::KIND_NOT_SET) return "field '" + f.name + "' has no value (kind not set)";
  if (v.kind_case() == Value::kNullValue) {
    return f.required ? "field '" + f.name + "' is required but is NULL" : "";
  }
  bool ok = false;
  switch (f.type) {
    case FieldType::kText: ok = v.kind_case() == Value::kStringValue; break;
    case FieldType::kInt: ok = v.kind_case() == Value::kIntValue; break;
    case FieldType::kFloat: ok = v.kind_case() == Value::kDoubleValue || v.kind_case() == Value::kIntValue; break;
    case FieldType::kBool: ok = v.kind_case() == Value::kBoolValue; break;
    case FieldType::kTimestamp:
    case FieldType::kDate: ok = v.kind_case() == Value::kTimestampMicros; break;
    case FieldType::kTextList: ok = v.kind_case() == Value::kStringList; break;
    case FieldType::kJson: ok = v.kind_case() == Value::kJsonValue; break;
  }
  if (!ok) return "field '" + f.name + "' is typed " + field_type_name(f.type) + " but got " + describe_value(v);
  // Required means the same as for a spreadsheet cell: an empty text or list does not count.
  if (f.required && ((v.kind_case() == Value::kStringValue && v.string_value().empty()) ||
                     (v.kind_case() == Value::kStringList && v.string_list().values_size() == 0))) {
    return "field '" + f.name + "' is required but is empty";
  }
  if (v.kind_case() == Value::kDoubleValue && !std::isfinite(v.double_value())) {
    return "field '" + f.name + "' got a non-finite number";
  }
  return "";
}

namespace {

// The canonical encoding of one named value (fields_checksum).
void put_field(std::string& buf, const std::string& name, const Value& v) {
  put_str(buf, name);
  buf.push_back(static_cast<char>(v.kind_case()));
  switch (v.kind_case()) {
    case Value::kNullValue: break;
    case Value::kBoolValue: buf.push_back(v.bool_value() ? 1 : 0); break;
    case Value::kIntValue: put_u64(buf, static_cast<uint64_t>(v.int_value())); break;
    case Value::kDoubleValue: {
      uint64_t bits = 0;
      const double d = v.double_value() == 0.0 ? 0.0 : v.double_value();  // -0.0 == 0.0
      std::memcpy(&bits, &d, sizeof bits);
      put_u64(buf, bits);
      break;
    }
    case Value::kStringValue: put_str(buf, v.string_value()); break;
    case Value::kTimestampMicros: put_u64(buf, static_cast<uint64_t>(v.timestamp_micros())); break;
    case Value::kStringList:
      put_u64(buf, static_cast<uint64_t>(v.string_list().values_size()));
      for (const auto& s : v.string_list().values()) put_str(buf, s);
      break;
    case Value::kJsonValue: put_str(buf, v.json_value()); break;
    case Value::KIND_NOT_SET: break;
  }
}

}  // namespace

uint64_t fields_checksum(const FieldMap& fields) {
  std::vector<const std::string*> names;
  names.reserve(fields.size());
  for (const auto& kv : fields) names.push_back(&kv.first);
  std::sort(names.begin(), names.end(), [](const auto* a, const auto* b) { return *a < *b; });
  std::string buf;
  buf.reserve(64 * names.size());
  for (const auto* name : names) put_field(buf, *name, fields.at(*name));
  return XXH3_64bits(buf.data(), buf.size());
}

std::string make_event_id(std::string_view source, std::string_view entity, std::string_view key,
                          int64_t source_version, uint64_t checksum) {
  std::string buf;
  put_str(buf, source);
  put_str(buf, entity);
  put_str(buf, key);
  put_u64(buf, static_cast<uint64_t>(source_version));
  put_u64(buf, checksum);
  const XXH128_hash_t h = XXH3_128bits(buf.data(), buf.size());
  char out[33];
  std::snprintf(out, sizeof out, "%016llx%016llx", static_cast<unsigned long long>(h.high64),
                static_cast<unsigned long long>(h.low64));
  return out;
}

std::string describe_value(const Value& v) {
  switch (v.kind_case()) {
    case Value::kNullValue: return "NULL";
    case Value::kBoolValue: return v.bool_value() ? "true" : "false";
    case Value::kIntValue: return std::to_string(v.int_value());
    case Value::kDoubleValue: {
      char b[32];
      std::snprintf(b, sizeof b, "%.17g", v.double_value());
      return b;
    }
    case Value::kStringValue: return quote_value(v.string_value());
    case Value::kTimestampMicros: return format_timestamp_micros(v.timestamp_micros());
    case Value::kStringList: {
      std::string s = "[";
      for (int i = 0; i < v.string_list().values_size(); ++i) s += (i ? ", " : "") + v.string_list().values(i);
      return s + "]";
    }
    case Value::kJsonValue: return quote_value(v.json_value());
    case Value::KIND_NOT_SET: return "(no value)";
  }
  return "?";
}

}  // namespace leadsync::common

namespace leadsync::common {

uint64_t fields_checksum(const FieldMap& fields, const std::vector<std::string>& sorted_names, std::string& scratch) {
  if (fields.size() != sorted_names.size()) return fields_checksum(fields);
  scratch.clear();
  for (const auto& name : sorted_names) {
    const auto it = fields.find(name);
    if (it == fields.end()) return fields_checksum(fields);
    put_field(scratch, name, it->second);
  }
  return XXH3_64bits(scratch.data(), scratch.size());
}

}  // namespace leadsync::common

namespace leadsync::common {

uint64_t fields_checksum(const NamedValue* fields, std::size_t n, std::string& scratch) {
  scratch.clear();
  for (std::size_t i = 0; i < n; ++i) put_field(scratch, *fields[i].name, *fields[i].value);
  return XXH3_64bits(scratch.data(), scratch.size());
}

}  // namespace leadsync::common
