#include "producers/twenty/twenty_record.h"

namespace leadsync::producers::twenty {
namespace {

const nlohmann::json* find_path(const nlohmann::json& record, const std::string& path) {
  const nlohmann::json* cur = &record;
  std::size_t start = 0;
  for (;;) {
    const auto dot = path.find('.', start);
    const auto part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    if (!cur->is_object()) return nullptr;
    const auto it = cur->find(part);
    if (it == cur->end()) return nullptr;
    cur = &*it;
    if (dot == std::string::npos) return cur;
    start = dot + 1;
  }
}

}  // namespace

bool has_path(const nlohmann::json& record, const std::string& path) { return find_path(record, path) != nullptr; }

common::Value value_at(const nlohmann::json& record, const std::string& path) {
  common::Value v;
  const auto* j = find_path(record, path);
  if (!j) return v;
  switch (j->type()) {
    case nlohmann::json::value_t::null:
      v.set_null_value(true);
      break;
    case nlohmann::json::value_t::boolean:
      v.set_bool_value(j->get<bool>());
      break;
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      v.set_int_value(j->get<int64_t>());
      break;
    case nlohmann::json::value_t::number_float:
      v.set_double_value(j->get<double>());
      break;
    case nlohmann::json::value_t::string:
      v.set_string_value(j->get<std::string>());
      break;
    case nlohmann::json::value_t::array: {
      const bool strings = std::all_of(j->begin(), j->end(), [](const auto& e) { return e.is_string(); });
      if (strings) {
        auto* list = v.mutable_string_list();
        for (const auto& e : *j) list->add_values(e.get<std::string>());
      } else {
        v.set_json_value(j->dump());
      }
      break;
    }
    default:
      v.set_json_value(j->dump());
  }
  return v;
}

std::optional<int64_t> timestamp_micros(const nlohmann::json& record, const char* field) {
  const auto it = record.find(field);
  if (it == record.end() || !it->is_string()) return std::nullopt;
  return common::parse_timestamp_micros(it->get<std::string>());
}

std::string to_source_record(const nlohmann::json& record, const std::vector<std::string>& columns,
                             const std::string& key_column, std::size_t position, SourceRecord& out) {
  out = SourceRecord{};
  out.position = position;
  out.kind = CellKind::kTyped;
  if (!record.is_object()) return "the record is not a JSON object";
  const auto* key = find_path(record, key_column);
  if (!key || !key->is_string() || key->get<std::string>().empty()) {
    return "the record has no '" + key_column + "' (its key column)";
  }
  out.key = key->get<std::string>();
  out.source_version = timestamp_micros(record, "updatedAt");
  if (!out.source_version) return "record " + out.key + " has no readable updatedAt";
  if (const auto deleted = timestamp_micros(record, "deletedAt")) {
    out.op = RecordOp::kDelete;
    // A delete is the record's newest version (its deletedAt, never older than its last update).
    out.source_version = std::max(*out.source_version, *deleted);
    return "";
  }
  out.values.reserve(columns.size());
  for (const auto& c : columns) out.values.push_back(value_at(record, c));
  return "";
}

}  // namespace leadsync::producers::twenty
