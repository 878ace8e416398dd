// A Twenty record (JSON, sources.md "Twenty CRM") as a typed source record: each mapped column is a
// dotted path into the record ("name.firstName", "emails.primaryEmail"), so composite fields are
// flattened by the mapping, not by code. Polling and webhooks share this, so both publish the same
// full image with the same version (updatedAt) and can arrive in any order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "producers/source.h"

namespace leadsync::producers::twenty {

// The value at `path` as a wire Value: null, bool, int, double, string; a list of strings as a
// string list; any other array or object as JSON. A Value with no kind when the path is absent.
common::Value value_at(const nlohmann::json& record, const std::string& path);
bool has_path(const nlohmann::json& record, const std::string& path);

// A timestamp field of the record ("updatedAt", "deletedAt") in microseconds; nullopt when absent,
// null or unreadable.
std::optional<int64_t> timestamp_micros(const nlohmann::json& record, const char* field);

// Fills `out` (typed, values in `columns` order, key from `key_column`, version from updatedAt).
// A record whose deletedAt is set becomes a delete. Returns an error message when the record has
// no id or no readable updatedAt, else an empty string.
std::string to_source_record(const nlohmann::json& record, const std::vector<std::string>& columns,
                             const std::string& key_column, std::size_t position, SourceRecord& out);

}  // namespace leadsync::producers::twenty
