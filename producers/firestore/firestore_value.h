// Firestore's REST encoding of typed values (sources.md "Firestore REST"), decoded into the wire
// contract's Value without knowing the entity: the mapper then checks each value against its field
// (producers/mapper.h). Exactly as the REST API sends them:
//   nullValue → NULL; booleanValue → bool; integerValue (int64 as a JSON string) → int;
//   doubleValue (a number, or "NaN"/"Infinity"/"-Infinity") → double;
//   timestampValue (RFC 3339, up to nanoseconds) → timestamp, truncated to microseconds;
//   stringValue → string; bytesValue (base64) → the base64 text; referenceValue → the document's
//   path below the database (`agents/a2`);
//   arrayValue ({} when empty) → a string list when every element is a string, else JSON;
//   mapValue and geoPointValue → JSON (`{"latitude":…,"longitude":…}`).
// A malformed value is an error naming the field path, never a silent NULL.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/mapping.h"

namespace leadsync::producers::firestore {

// Decodes one typed value; nullopt with `error` set (naming `path`) when it is not a valid encoding.
std::optional<common::Value> decode_value(const nlohmann::json& typed, std::string_view path, std::string& error);

// The typed value as plain JSON (what a map becomes): numbers, strings, true/false, null, nested
// arrays and objects; timestamps as their RFC 3339 text, a non-finite double as its name.
nlohmann::json plain_json(const nlohmann::json& typed);

// The typed value at a field path of a document's `fields`: the field of that exact name if there is
// one (Firestore allows dots in names), else the dotted path through nested maps (`address.city`).
// nullptr when absent.
const nlohmann::json* find_field(const nlohmann::json& fields, const std::string& path);

// RFC 3339 as Firestore writes it ("2026-01-02T03:04:05.123456789Z") → microseconds since the epoch.
std::optional<int64_t> timestamp_micros(std::string_view rfc3339);

// "projects/p/databases/d/documents/agents/a1" → "agents/a1" (the name itself when it has no
// `/documents/` part); last_segment → "a1".
std::string document_path(std::string_view name);
std::string last_segment(std::string_view name);

}  // namespace leadsync::producers::firestore
