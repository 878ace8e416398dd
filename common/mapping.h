// Typed values: coercion of raw source text into the wire contract's Value, canonical checksums and
// deterministic event ids. Shared by every adapter (design.md §3 "map") and by verify.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "leadsync/v1/change_event.pb.h"

namespace leadsync::common {

using v1::ChangeEvent;
using v1::Value;
using FieldMap = google::protobuf::Map<std::string, Value>;

// Converts one raw cell into the field's typed value. An empty cell is NULL (an empty list for
// text_list). On failure returns nullopt and sets `error` to a message naming the field, the value
// and the expected form; the caller adds the record's position.
std::optional<Value> coerce_text(const FieldConfig& field, std::string_view raw, std::string& error);
// The same, into `out` (whatever it held), reusing its string storage: no allocation per value once
// `out` held the same kind (the producer's hot path). On failure returns false, sets `error`, and
// leaves `out` in an unspecified state.
bool coerce_text_into(const FieldConfig& field, std::string_view raw, Value& out, std::string& error);

// The field's `normalize` rule applied to one text (a text value, or one item of a list).
std::string normalize_text(const FieldConfig& field, std::string_view text);

// Checks a value already typed by its producer (a foreign producer, a webhook) against the field.
// Returns an empty string when it fits, else what is wrong. int is accepted for float.
std::string check_value(const FieldConfig& field, const Value& value);

// "2026-01-02 03:04:05", "2026-01-02T03:04:05.123Z", "2026-01-02T03:04:05+02:00", "2026-01-02".
std::optional<int64_t> parse_timestamp_micros(std::string_view text);
std::string format_timestamp_micros(int64_t micros);  // "2026-01-02 03:04:05.123456+00"
std::string format_date(int64_t micros);               // "2026-01-02"

// 64-bit hash of the canonical encoding of `fields` (sorted by name, typed, length-prefixed).
uint64_t fields_checksum(const FieldMap& fields);
// Same change, same id: hash of (source, entity, key, source_version, checksum), 32 hex digits.
std::string make_event_id(std::string_view source, std::string_view entity, std::string_view key,
                          int64_t source_version, uint64_t checksum);

// A short human-readable rendering of a value for error messages and reports ("NULL", "[a, b]").
std::string describe_value(const Value& value);

}  // namespace leadsync::common

namespace leadsync::common {

// Parses PostgreSQL's text output of a column of the field's type back into a Value (for verify).
// Expects the session to run with TimeZone 'UTC' and DateStyle 'ISO'. nullopt when unparseable.
std::optional<Value> value_from_sql_text(const FieldConfig& field, std::string_view text);
// Same content: typed comparison (floats by value, lists element by element).
bool same_value(const Value& a, const Value& b);

}  // namespace leadsync::common

namespace leadsync::common {

// fields_checksum() for a caller that knows the field names beforehand, sorted (std::string's <),
// and reuses `scratch` between calls: no sorting and no allocation per record (the producer's hot
// path). The same value as fields_checksum(fields) whatever the map holds (another key set falls
// back to it).
uint64_t fields_checksum(const FieldMap& fields, const std::vector<std::string>& sorted_names, std::string& scratch);

// fields_checksum() of a map that holds exactly `n` fields, given here sorted by name (std::string's <):
// the value of fields[i].name is *fields[i].value. Reuses `scratch`.
struct NamedValue {
  const std::string* name;
  const Value* value;
};
uint64_t fields_checksum(const NamedValue* fields, std::size_t n, std::string& scratch);

}  // namespace leadsync::common
