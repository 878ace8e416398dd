#include "producers/firestore/firestore_value.h"

#include <charconv>
#include <cmath>
#include <limits>

namespace leadsync::producers::firestore {
namespace {

using nlohmann::json;

std::optional<int64_t> parse_int64(const json& v) {
  if (v.is_number_integer()) return v.get<int64_t>();
  if (!v.is_string()) return std::nullopt;
  const auto& s = v.get_ref<const std::string&>();
  int64_t n = 0;
  const auto* end = s.data() + s.size();
  const auto [p, ec] = std::from_chars(s.data(), end, n);
  if (s.empty() || ec != std::errc() || p != end) return std::nullopt;
  return n;
}

std::optional<double> parse_double(const json& v) {
  if (v.is_number()) return v.get<double>();
  if (!v.is_string()) return std::nullopt;
  const auto& s = v.get_ref<const std::string&>();
  if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
  if (s == "Infinity") return std::numeric_limits<double>::infinity();
  if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  return std::nullopt;
}

// The one member of a typed value ({"stringValue": "x"}), or nullptr when it is not exactly one.
const json::object_t::value_type* member(const json& typed) {
  if (!typed.is_object() || typed.size() != 1) return nullptr;
  return &*typed.get_ref<const json::object_t&>().begin();
}

std::string describe(const json& typed) {
  auto text = typed.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return text;
}

}  // namespace

std::optional<int64_t> timestamp_micros(std::string_view text) {
  // parse_timestamp_micros reads up to 6 fraction digits and ignores the rest (truncation).
  if (text.size() < 20 || text[10] != 'T' || (text.back() != 'Z' && text.find_first_of("+-", 19) == text.npos)) {
    return std::nullopt;
  }
  return common::parse_timestamp_micros(text);
}

std::string document_path(std::string_view name) {
  constexpr std::string_view kDocuments = "/documents/";
  const auto at = name.find(kDocuments);
  return std::string(at == name.npos ? name : name.substr(at + kDocuments.size()));
}

std::string last_segment(std::string_view name) {
  const auto at = name.rfind('/');
  return std::string(at == name.npos ? name : name.substr(at + 1));
}

json plain_json(const json& typed) {
  const auto* m = member(typed);
  if (!m) return nullptr;
  const auto& [kind, v] = *m;
  if (kind == "nullValue") return nullptr;
  if (kind == "booleanValue") return v.is_boolean() ? v : json(nullptr);
  if (kind == "integerValue") {
    const auto n = parse_int64(v);
    return n ? json(*n) : json(nullptr);
  }
  if (kind == "doubleValue") {
    const auto d = parse_double(v);
    if (!d) return nullptr;
    return std::isfinite(*d) ? json(*d) : v;  // JSON has no NaN: keep Firestore's name for it
  }
  if (kind == "referenceValue") return v.is_string() ? json(document_path(v.get<std::string>())) : json(nullptr);
  if (kind == "geoPointValue") {
    return json{{"latitude", v.value("latitude", 0.0)}, {"longitude", v.value("longitude", 0.0)}};
  }
  if (kind == "arrayValue") {
    json out = json::array();
    if (v.is_object() && v.contains("values") && v["values"].is_array()) {
      for (const auto& e : v["values"]) out.push_back(plain_json(e));
    }
    return out;
  }
  if (kind == "mapValue") {
    json out = json::object();
    if (v.is_object() && v.contains("fields") && v["fields"].is_object()) {
      for (const auto& [k, e] : v["fields"].items()) out[k] = plain_json(e);
    }
    return out;
  }
  return v;  // stringValue, timestampValue, bytesValue: their text
}

std::optional<common::Value> decode_value(const json& typed, std::string_view path, std::string& error) {
  common::Value out;
  const auto* m = member(typed);
  const auto fail = [&](const std::string& why) {
    error = "field '" + std::string(path) + "': " + why + ": " + describe(typed);
    return std::nullopt;
  };
  if (!m) return fail("expected one typed value such as {\"stringValue\": ...}");
  const auto& [kind, v] = *m;
  if (kind == "nullValue") {
    out.set_null_value(true);
  } else if (kind == "booleanValue") {
    if (!v.is_boolean()) return fail("booleanValue is not true or false");
    out.set_bool_value(v.get<bool>());
  } else if (kind == "integerValue") {
    const auto n = parse_int64(v);
    if (!n) return fail("integerValue is not a 64-bit integer");
    out.set_int_value(*n);
  } else if (kind == "doubleValue") {
    const auto d = parse_double(v);
    if (!d) return fail("doubleValue is not a number");
    out.set_double_value(*d);
  } else if (kind == "timestampValue") {
    const auto t = v.is_string() ? timestamp_micros(v.get_ref<const std::string&>()) : std::nullopt;
    if (!t) return fail("timestampValue is not an RFC 3339 timestamp");
    out.set_timestamp_micros(*t);
  } else if (kind == "stringValue" || kind == "bytesValue") {
    if (!v.is_string()) return fail(kind + " is not a string");
    out.set_string_value(v.get<std::string>());
  } else if (kind == "referenceValue") {
    if (!v.is_string()) return fail("referenceValue is not a string");
    out.set_string_value(document_path(v.get_ref<const std::string&>()));
  } else if (kind == "arrayValue") {
    if (!v.is_object()) return fail("arrayValue is not an object");
    const auto values = v.find("values");
    auto* list = out.mutable_string_list();  // {} is the empty array
    if (values != v.end()) {
      if (!values->is_array()) return fail("arrayValue.values is not a list");
      for (const auto& e : *values) {
        const auto* em = member(e);
        if (!em) return fail("an array element is not a typed value");
        if (em->first != "stringValue" || !em->second.is_string()) {
          out.set_json_value(plain_json(typed).dump());  // not a list of strings: the array as JSON
          return out;
        }
        list->add_values(em->second.get<std::string>());
      }
    }
  } else if (kind == "mapValue" || kind == "geoPointValue") {
    if (!v.is_object()) return fail(kind + " is not an object");
    out.set_json_value(plain_json(typed).dump());
  } else {
    return fail("unknown value type '" + kind + "'");
  }
  return out;
}

const json* find_field(const json& fields, const std::string& path) {
  if (!fields.is_object()) return nullptr;
  if (const auto it = fields.find(path); it != fields.end()) return &*it;
  const json* at = &fields;
  std::size_t start = 0;
  while (true) {
    const auto dot = path.find('.', start);
    const auto it = at->find(path.substr(start, dot == path.npos ? path.npos : dot - start));
    if (it == at->end()) return nullptr;
    if (dot == path.npos) return &*it;
    // Only a map has fields below it: {"mapValue": {"fields": {...}}}.
    const auto map = it->find("mapValue");
    if (map == it->end() || !map->is_object()) return nullptr;
    const auto inner = map->find("fields");
    if (inner == map->end() || !inner->is_object()) return nullptr;
    at = &*inner;
    start = dot + 1;
  }
}

}  // namespace leadsync::producers::firestore
