#include "producers/mapper.h"

#include <chrono>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <set>
#include <stdexcept>

#include "common/scoring.h"

namespace leadsync::producers {
namespace {

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) s.remove_suffix(1);
  return s;
}

// A typed source's value for field `f` (R2): a string is read like a spreadsheet cell (normalised,
// parsed for non-text fields); a list field takes a list, and anything else only by its coerce rule
// (wrap_scalar: a string becomes a list of one, NULL or an absent field the empty list; reject: a
// row error); a json field also takes a list of strings as a JSON array.
std::optional<common::Value> typed_value(const common::FieldConfig& f, const common::Value& given,
                                         std::string& message) {
  using common::Value;
  const auto kind = given.kind_case();
  if (f.type == common::FieldType::kTextList && kind != Value::kStringList) {
    const bool empty = kind == Value::KIND_NOT_SET || kind == Value::kNullValue;
    if (f.coerce == common::ListCoerce::kWrapScalar && empty) return common::coerce_text(f, "", message);
    if (f.coerce == common::ListCoerce::kWrapScalar && kind == Value::kStringValue) {
      Value v;
      auto* list = v.mutable_string_list();
      if (auto item = common::normalize_text(f, given.string_value()); !item.empty()) list->add_values(std::move(item));
      if (f.required && list->values_size() == 0) {
        message = "field '" + f.name + "' is required but the list is empty";
        return std::nullopt;
      }
      return v;
    }
    message = "field '" + f.name + "' is a list (text_list) but got " +
              (kind == Value::KIND_NOT_SET ? std::string("no value") : common::describe_value(given)) +
              (f.coerce == common::ListCoerce::kReject ? " (coerce: reject)" : "");
    return std::nullopt;
  }
  if (kind == Value::KIND_NOT_SET) return common::coerce_text(f, "", message);  // absent: an empty cell
  if (kind == Value::kStringValue) return common::coerce_text(f, given.string_value(), message);
  if (f.type == common::FieldType::kJson && kind == Value::kStringList) {
    Value v;
    v.set_json_value(nlohmann::json(std::vector<std::string>(given.string_list().values().begin(),
                                                             given.string_list().values().end()))
                         .dump());
    return v;
  }
  if (message = common::check_value(f, given); !message.empty()) return std::nullopt;
  Value v = given;
  if (kind == Value::kStringList && f.normalize != common::Normalize::kNone) {
    for (auto& item : *v.mutable_string_list()->mutable_values()) item = common::normalize_text(f, item);
  }
  return v;
}

}  // namespace

Mapper::Mapper(const common::SourceConfig& source, const common::EntityConfig& entity, const SourceAdapter& snapshot)
    : source_(source),
      entity_(entity),
      now_micros_(std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count()) {
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
  // The names every mapped event holds: the mapped fields and the rules' computed ones.
  std::set<std::string> held;
  for (const auto& c : columns_) held.insert(c.field->name);
  if (entity.rules) {
    if (!entity.rules->score_field().empty()) held.insert(entity.rules->score_field());
    if (!entity.rules->segment_field().empty()) held.insert(entity.rules->segment_field());
  }
  sorted_names_.assign(held.begin(), held.end());
  slots_usable_ = !entity.rules && sorted_names_.size() == columns_.size();
  for (std::size_t i = 0; i < columns_.size(); ++i) by_name_.push_back(i);
  std::sort(by_name_.begin(), by_name_.end(),
            [&](std::size_t a, std::size_t b) { return columns_[a].field->name < columns_[b].field->name; });
}

bool Mapper::is_blank(const SourceRecord& record) {
  if (!record.key.empty()) return false;
  for (const auto& c : record.cells) {
    if (!trimmed(c).empty()) return false;
  }
  for (const auto& v : record.values) {
    if (v.kind_case() != common::Value::KIND_NOT_SET && v.kind_case() != common::Value::kNullValue) return false;
  }
  return true;
}

bool Mapper::map(const SourceRecord& record, common::ChangeEvent& event, RowError& error) const {
  return map_into(record, event, error, nullptr);
}

bool Mapper::map(const SourceRecord& record, common::ChangeEvent& event, RowError& error,
                 std::vector<common::Value*>& slots) const {
  return map_into(record, event, error, &slots);
}

bool Mapper::map_into(const SourceRecord& record, common::ChangeEvent& event, RowError& error,
                      std::vector<common::Value*>* slots) const {
  static const std::string kEmpty;
  static const common::Value kAbsent;
  const bool typed = record.kind == CellKind::kTyped;
  auto cell = [&](std::size_t index) -> const std::string& {
    return index < record.cells.size() ? record.cells[index] : kEmpty;  // ragged rows: missing = empty
  };
  auto value = [&](std::size_t index) -> const common::Value& {
    return index < record.values.size() ? record.values[index] : kAbsent;
  };
  // The event is reused from record to record: its scalars are overwritten below, and its field map
  // keeps its entries (and their capacity) when it holds exactly this mapping's names, each of which
  // is set again; anything else starts from an empty map.
  auto* fields = event.mutable_fields();
  if (fields->size() != sorted_names_.size()) {
    fields->clear();
    if (slots) slots->clear();
  }
  // The slots point into the field map's entries, which stay where they are until erased.
  const bool slotted = slots && slots_usable_ && !typed;
  const bool cached = slotted && slots->size() == columns_.size();
  event.clear_event_id();
  event.clear_partial();
  event.clear_source_version();
  event.clear_observed_at_micros();
  event.clear_checksum();
  event.clear_run_id();
  std::string_view key = record.key;
  if (key.empty()) {
    key = typed ? (value(key_index_).kind_case() == common::Value::kStringValue
                       ? std::string_view(value(key_index_).string_value())
                       : std::string_view())
                : trimmed(cell(key_index_));
  }
  if (key.empty()) {
    error = {record.position, "", source_.key_column, "", "the key column '" + source_.key_column + "' is empty"};
    return false;
  }
  event.mutable_key()->assign(key.data(), key.size());
  event.mutable_entity()->assign(entity_.name);
  event.mutable_source()->assign(source_.name);
  event.mutable_origin()->assign(source_.name);
  event.set_op(leadsync::v1::OP_UPSERT);
  std::string message;
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    const auto& column = columns_[i];
    const auto& f = *column.field;
    bool ok = false;
    if (typed) {
      auto v = typed_value(f, value(column.index), message);
      if (v) (*fields)[f.name] = std::move(*v);
      ok = v.has_value();
    } else {
      // Coerced in place: the reused event's value keeps its string's capacity.
      ok = common::coerce_text_into(f, cell(column.index), cached ? *(*slots)[i] : (*fields)[f.name], message);
    }
    if (!ok) {
      const auto shown = typed ? common::describe_value(value(column.index)) : cell(column.index);
      error = {record.position, event.key(), column.name, shown, message};
      return false;
    }
  }
  // Computed fields before the checksum: it covers them, so a rule change re-publishes exactly
  // the records whose score or segment changes.
  if (entity_.rules) entity_.rules->apply(*fields, now_micros_);
  if (cached) {
    // The slots' map holds exactly these fields: checksummed in name order without a lookup.
    thread_local std::vector<common::NamedValue> named;
    named.resize(by_name_.size());
    for (std::size_t k = 0; k < by_name_.size(); ++k) {
      named[k] = {&columns_[by_name_[k]].field->name, (*slots)[by_name_[k]]};
    }
    thread_local std::string encoded;
    event.set_checksum(common::fields_checksum(named.data(), named.size(), encoded));
    return true;
  }
  if (fields->size() != sorted_names_.size()) {
    if (slots) slots->clear();
    // A reused event that held other names: only this mapping's fields go out.
    for (auto it = fields->begin(); it != fields->end();) {
      if (std::binary_search(sorted_names_.begin(), sorted_names_.end(), it->first)) {
        ++it;
      } else {
        it = fields->erase(it);
      }
    }
  }
  thread_local std::string scratch;  // the checksum's encoding buffer, reused
  event.set_checksum(common::fields_checksum(*fields, sorted_names_, scratch));
  if (slotted) {
    slots->resize(columns_.size());
    for (std::size_t i = 0; i < columns_.size(); ++i) (*slots)[i] = &fields->at(columns_[i].field->name);
  }
  return true;
}

}  // namespace leadsync::producers
