// PostgreSQL's text output of a field's column read back into a Value, and typed comparison of
// values: what `leadsyncctl verify` compares the source with (declared in mapping.h).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "common/mapping.h"

namespace leadsync::common {
namespace {

// Parses a one-dimensional PostgreSQL array literal: {a,"b c",NULL,"d\"e"}.
std::optional<std::vector<std::string>> parse_pg_array(std::string_view s) {
  if (s.size() < 2 || s.front() != '{' || s.back() != '}') return std::nullopt;
  std::vector<std::string> out;
  std::size_t i = 1;
  const std::size_t end = s.size() - 1;
  if (i == end) return out;
  while (i <= end) {
    std::string item;
    if (s[i] == '"') {
      ++i;
      while (i < end && s[i] != '"') {
        if (s[i] == '\\' && i + 1 < end) ++i;
        item += s[i++];
      }
      if (i >= end) return std::nullopt;
      ++i;  // closing quote
    } else {
      while (i < end && s[i] != ',') item += s[i++];
    }
    out.push_back(std::move(item));
    if (i == end) break;
    if (s[i] != ',') return std::nullopt;
    ++i;
  }
  return out;
}

}  // namespace

std::optional<Value> value_from_sql_text(const FieldConfig& field, std::string_view text) {
  Value v;
  std::string error;
  switch (field.type) {
    case FieldType::kText: v.set_string_value(std::string(text)); return v;
    case FieldType::kJson: v.set_json_value(std::string(text)); return v;
    case FieldType::kBool:
      if (text == "t" || text == "f") {
        v.set_bool_value(text == "t");
        return v;
      }
      return std::nullopt;
    case FieldType::kTextList: {
      auto items = parse_pg_array(text);
      if (!items) return std::nullopt;
      auto* list = v.mutable_string_list();  // an empty array is still a list, not "no value"
      for (auto& item : *items) list->add_values(std::move(item));
      return v;
    }
    case FieldType::kInt:
    case FieldType::kFloat:
    case FieldType::kTimestamp:
    case FieldType::kDate: {
      FieldConfig raw = field;
      raw.required = false;
      raw.normalize = Normalize::kNone;
      return coerce_text(raw, text, error);
    }
  }
  return std::nullopt;
}

bool same_value(const Value& a, const Value& b) {
  if (a.kind_case() == Value::kIntValue && b.kind_case() == Value::kDoubleValue) {
    return static_cast<double>(a.int_value()) == b.double_value();
  }
  if (a.kind_case() == Value::kDoubleValue && b.kind_case() == Value::kIntValue) return same_value(b, a);
  if (a.kind_case() != b.kind_case()) return false;
  switch (a.kind_case()) {
    case Value::kNullValue: return true;
    case Value::kBoolValue: return a.bool_value() == b.bool_value();
    case Value::kIntValue: return a.int_value() == b.int_value();
    case Value::kDoubleValue: return a.double_value() == b.double_value();
    case Value::kStringValue: return a.string_value() == b.string_value();
    case Value::kTimestampMicros: return a.timestamp_micros() == b.timestamp_micros();
    case Value::kStringList:
      return std::equal(a.string_list().values().begin(), a.string_list().values().end(),
                        b.string_list().values().begin(), b.string_list().values().end());
    case Value::kJsonValue: {
      if (a.json_value() == b.json_value()) return true;
      // jsonb stores its own text (key order, spacing): the same document, written differently.
      const auto ja = nlohmann::json::parse(a.json_value(), nullptr, false);
      const auto jb = nlohmann::json::parse(b.json_value(), nullptr, false);
      return !ja.is_discarded() && !jb.is_discarded() && ja == jb;
    }
    case Value::KIND_NOT_SET: return true;
  }
  return false;
}

}  // namespace leadsync::common
