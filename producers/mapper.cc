#include "producers/mapper.h"

#include <set>
#include <stdexcept>

namespace leadsync::producers {
namespace {

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

}  // namespace

Mapper::Mapper(const common::SourceConfig& source, const common::EntityConfig& entity, const SourceAdapter& snapshot)
    : source_(source), entity_(entity) {
  const auto& names = snapshot.columns();
  std::vector<std::string> missing;
  std::vector<std::string> ambiguous;
  std::set<std::string> mapped;
  for (const auto& [column, field] : source.columns) {
    mapped.insert(column);
    if (snapshot.is_duplicate_column(column)) {
      ambiguous.push_back("'" + column + "'");
      continue;
    }
    std::size_t index = names.size();
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (names[i] == column) index = i;
    }
    if (index == names.size()) {
      missing.push_back("'" + column + "'");
      continue;
    }
    if (field == entity.key) {
      key_index_ = index;
    } else {
      columns_.push_back({index, column, entity.field(field)});
    }
  }
  if (!missing.empty() || !ambiguous.empty()) {
    std::string msg = "source " + source.name + ":";
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    if (!missing.empty()) msg += " mapped column(s) missing from the sheet: " + join(missing) + ";";
    if (!ambiguous.empty()) msg += " mapped column(s) that appear more than once: " + join(ambiguous) + ";";
    msg += " fix the sheet or the mapping (nothing was synced)";
    throw std::runtime_error(msg);
  }
  for (const auto& name : names) {
    if (!name.empty() && !mapped.count(name)) unmapped_.push_back(name);
  }
}

bool Mapper::is_blank(const RawRecord& record) {
  for (const auto& c : record.cells) {
    if (!trimmed(c).empty()) return false;
  }
  return true;
}

bool Mapper::map(const RawRecord& record, common::ChangeEvent& event, RowError& error) const {
  static const std::string kEmpty;
  auto cell = [&](std::size_t index) -> const std::string& {
    return index < record.cells.size() ? record.cells[index] : kEmpty;  // ragged rows: missing = empty
  };
  event.Clear();
  const auto key = trimmed(cell(key_index_));
  if (key.empty()) {
    error = {record.position, "", source_.key_column, "", "the key column '" + source_.key_column + "' is empty"};
    return false;
  }
  event.set_key(std::string(key));
  event.set_entity(entity_.name);
  event.set_source(source_.name);
  event.set_origin(source_.name);
  event.set_op(leadsync::v1::OP_UPSERT);
  auto* fields = event.mutable_fields();
  std::string message;
  for (const auto& column : columns_) {
    const auto& raw = cell(column.index);
    auto value = common::coerce_text(*column.field, raw, message);
    if (!value) {
      error = {record.position, event.key(), column.name, raw, message};
      return false;
    }
    (*fields)[column.field->name] = std::move(*value);
  }
  event.set_checksum(common::fields_checksum(*fields));
  return true;
}

}  // namespace leadsync::producers
