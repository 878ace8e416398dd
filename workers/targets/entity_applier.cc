#include "workers/targets/entity_applier.h"

#include <charconv>
#include <cstdio>

#include "common/pg.h"

namespace leadsync::workers {
namespace {

using common::FieldType;
using common::Value;

std::string list_literal(const leadsync::v1::StringList& list) {
  common::TextArrayLiteral a;
  for (const auto& v : list.values()) a.add(std::string_view(v));
  return a.str();
}

bool is_delete(const common::ChangeEvent& e) { return e.op() == leadsync::v1::OP_DELETE; }

// Adds a number's decimal text without a temporary string.
void add_integer(common::BinaryArray& out, int64_t n) {
  char buf[24];
  const auto end = std::to_chars(buf, buf + sizeof buf, n).ptr;
  out.add(std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

// Writes `n` as `width` decimal digits, zero-padded, ending at `end`.
char* digits(char* end, int64_t n, int width) {
  for (int i = 0; i < width; ++i) {
    *--end = static_cast<char>('0' + n % 10);
    n /= 10;
  }
  return end;
}

// A timestamp (or date) as format_timestamp_micros() spells it, "YYYY-MM-DD HH:MM:SS.ffffff+00",
// without snprintf and gmtime (a measurable share of the worker's staging, issue 12): the civil
// date from the day number (H. Hinnant's days_from_civil inverse). Years outside 1..9999, which
// %04d would print differently, go the general way.
bool add_timestamp(common::BinaryArray& out, int64_t micros, bool date_only) {
  constexpr int64_t kDay = 86'400'000'000;
  int64_t days = micros / kDay, of_day = micros % kDay;
  if (of_day < 0) {
    of_day += kDay;
    --days;
  }
  const int64_t z = days + 719'468;
  const int64_t era = (z >= 0 ? z : z - 146'096) / 146'097;
  const int64_t doe = z - era * 146'097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36'524 - doe / 146'096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 1 || year > 9999) return false;
  char buf[32];
  char* p = buf;
  p = digits(p + 4, year, 4) + 4;
  *p++ = '-';
  p = digits(p + 2, month, 2) + 2;
  *p++ = '-';
  p = digits(p + 2, day, 2) + 2;
  if (!date_only) {
    const int64_t secs = of_day / 1'000'000;
    *p++ = ' ';
    p = digits(p + 2, secs / 3600, 2) + 2;
    *p++ = ':';
    p = digits(p + 2, secs / 60 % 60, 2) + 2;
    *p++ = ':';
    p = digits(p + 2, secs % 60, 2) + 2;
    *p++ = '.';
    p = digits(p + 6, of_day % 1'000'000, 6) + 6;
    *p++ = '+';
    *p++ = '0';
    *p++ = '0';
  }
  out.add(std::string_view(buf, static_cast<std::size_t>(p - buf)));
  return true;
}

// Adds the value as sql_text() spells it. The common kinds (text, numbers, booleans, nulls) are
// added from the event's own bytes: the staging runs for every field of every event, and a
// temporary string per value was a measurable share of the worker's CPU.
void add_sql_text(common::BinaryArray& out, const common::FieldConfig& field, const Value& v) {
  switch (v.kind_case()) {
    case Value::kNullValue:
    case Value::KIND_NOT_SET: out.add_null(); return;
    case Value::kBoolValue: out.add(std::string_view(v.bool_value() ? "t" : "f")); return;
    case Value::kIntValue: add_integer(out, v.int_value()); return;
    case Value::kStringValue: out.add(std::string_view(v.string_value())); return;
    case Value::kJsonValue: out.add(std::string_view(v.json_value())); return;
    case Value::kTimestampMicros:
      if (add_timestamp(out, v.timestamp_micros(), field.type == FieldType::kDate)) return;
      out.add(sql_text(field, v));
      return;
    default: out.add(sql_text(field, v)); return;
  }
}

constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kUnixToPostgresEpoch = 946'684'800'000'000;  // 2000-01-01 in Unix microseconds
// Years 1..9999, which both the text and the binary forms spell alike; others take the text way.
constexpr int64_t kFirstMicros = -62'135'596'800'000'000, kEndMicros = 253'402'300'800'000'000;

// Adds the value as its column's type's binary form, if it has that type's kind (or is NULL) and a
// timestamp is within the years both forms agree on; else adds nothing and returns false, and the
// batch goes the text way.
bool add_typed(common::BinaryArray& out, const Value& v) {
  using common::BinaryArray;
  const auto kind = v.kind_case();
  if (kind == Value::kNullValue || kind == Value::KIND_NOT_SET) {
    out.add_null();
    return true;
  }
  const auto in_years = [&] { return v.timestamp_micros() >= kFirstMicros && v.timestamp_micros() < kEndMicros; };
  switch (out.element_type()) {
    case BinaryArray::kInt8:
      if (kind != Value::kIntValue) return false;
      out.add_int8(v.int_value());
      return true;
    case BinaryArray::kFloat8:
      if (kind != Value::kDoubleValue) return false;
      out.add_float8(v.double_value());
      return true;
    case BinaryArray::kBool:
      if (kind != Value::kBoolValue) return false;
      out.add_bool(v.bool_value());
      return true;
    case BinaryArray::kTimestamptz:
      if (kind != Value::kTimestampMicros || !in_years()) return false;
      out.add_timestamptz(v.timestamp_micros() - kUnixToPostgresEpoch);
      return true;
    case BinaryArray::kDate: {
      if (kind != Value::kTimestampMicros || !in_years()) return false;
      const int64_t micros = v.timestamp_micros();
      const int64_t days = micros / kDay - (micros % kDay < 0 ? 1 : 0);  // floor: the UTC date
      out.add_date(static_cast<int32_t>(days - kUnixToPostgresEpoch / kDay));
      return true;
    }
    default: return false;  // not a typed column
  }
}

}  // namespace

std::optional<std::string> sql_text(const common::FieldConfig& field, const Value& v) {
  char buf[40];
  switch (v.kind_case()) {
    case Value::kNullValue:
    case Value::KIND_NOT_SET: return std::nullopt;
    case Value::kBoolValue: return std::string(v.bool_value() ? "t" : "f");
    case Value::kIntValue: return std::to_string(v.int_value());
    case Value::kDoubleValue:
      std::snprintf(buf, sizeof buf, "%.17g", v.double_value());
      return std::string(buf);
    case Value::kStringValue: return v.string_value();
    case Value::kTimestampMicros:
      return field.type == FieldType::kDate ? common::format_date(v.timestamp_micros())
                                            : common::format_timestamp_micros(v.timestamp_micros());
    case Value::kStringList: return list_literal(v.string_list());
    case Value::kJsonValue: return v.json_value();
  }
  return std::nullopt;
}

EntityApplier::EntityApplier(const common::Config& config, const common::EntityConfig& entity)
    : entity_(entity),
      statement_(merge_statement(config.postgres.schema, entity)),
      // The two prefixes differ in their 17th letter, so no two entities' names can make one name.
      prepared_name_("leadsync_merge_typed_" + entity.name),
      text_prepared_name_("leadsync_merge_text_" + entity.name) {}

EntityApplier::Bound EntityApplier::parameters(const std::vector<const common::ChangeEvent*>& events) const {
  if (auto typed = stage(events, true)) return {std::move(*typed), true};
  return {text_parameters(events), false};
}

std::vector<std::string> EntityApplier::text_parameters(const std::vector<const common::ChangeEvent*>& events) const {
  return *stage(events, false);
}

std::optional<std::vector<std::string>> EntityApplier::stage(const std::vector<const common::ChangeEvent*>& events,
                                                             bool typed) const {
  const auto& columns = statement_.columns;
  std::vector<common::BinaryArray> staged;
  staged.reserve(columns.size());
  for (std::size_t c = 0; c < columns.size(); ++c) {
    staged.emplace_back(typed ? statement_.column_types[c] : common::BinaryArray::kText);
    staged.back().reserve(events.size() * 16);
  }
  for (const auto* e : events) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      auto& out = staged[c];
      const bool as_text = out.element_type() == common::BinaryArray::kText;
      switch (columns[c]) {
        case StagedColumn::kKey: out.add(e->key()); break;
        case StagedColumn::kField: {
          const auto& f = entity_.fields[static_cast<std::size_t>(statement_.column_field[c])];
          const auto it = e->fields().find(f.name);
          // A tombstone stages no values: the statement keeps the record's last ones.
          if (is_delete(*e) || it == e->fields().end()) {
            out.add_null();
          } else if (as_text) {
            add_sql_text(out, f, it->second);
          } else if (!add_typed(out, it->second)) {
            return std::nullopt;  // a value of another kind than its field's: the text way
          }
          break;
        }
        case StagedColumn::kVersion:
          as_text ? add_integer(out, e->source_version()) : out.add_int8(e->source_version());
          break;
        case StagedColumn::kDeleted:
          as_text ? out.add(std::string_view(is_delete(*e) ? "t" : "f")) : out.add_bool(is_delete(*e));
          break;
        case StagedColumn::kSource: out.add(e->source()); break;
        case StagedColumn::kOrigin: out.add(e->origin().empty() ? e->source() : e->origin()); break;
        case StagedColumn::kEventId: out.add(e->event_id()); break;
        case StagedColumn::kRunId: out.add(e->run_id()); break;
        case StagedColumn::kFieldPresence: {
          std::string mask(entity_.fields.size(), '0');
          for (std::size_t i = 0; i < mask.size() && !is_delete(*e); ++i) {
            if (e->fields().count(entity_.fields[i].name)) mask[i] = '1';
          }
          out.add(mask);
          break;
        }
      }
    }
  }
  std::vector<std::string> params;
  params.reserve(staged.size() + 1);
  for (const auto& c : staged) params.push_back(c.bytes());
  if (statement_.binds_entity_name) params.push_back(entity_.name);
  return params;
}

std::map<std::string, ApplyCounts> EntityApplier::apply(pqxx::transaction_base& tx,
                                                        const std::vector<const common::ChangeEvent*>& events) const {
  std::map<std::string, ApplyCounts> out;
  if (events.empty()) return out;
  // Prepared once per connection (libpqxx prepares on first use, and again on a new connection): the
  // statement is parsed and analysed once, not per batch. Planned per execution all the same (the
  // worker's sessions run with plan_cache_mode = force_custom_plan, common/pg.cc): a generic plan
  // would estimate the staged arrays at 10 rows whatever the batch holds.
  // Every parameter travels in binary (an array as array_send writes it, the entity's name as its
  // bytes): the server copies the elements instead of parsing a literal, and a typed column's
  // elements are already of its type. A batch with a value of another kind than its field's
  // type is bound all as text, and the server casts it (or refuses it, naming the value).
  const auto bound = parameters(events);
  const auto& name = bound.typed ? prepared_name_ : text_prepared_name_;
  tx.conn().prepare(name, bound.typed ? statement_.sql : statement_.text_sql);
  std::vector<pqxx::binarystring> binary;
  for (const auto& p : bound.values) binary.emplace_back(p.data(), p.size());
  const auto rows = tx.exec_prepared(name, pqxx::prepare::make_dynamic_params(binary));
  for (const auto& r : rows) {
    auto& c = out[r[0].is_null() ? std::string() : r[0].as<std::string>()];
    c.inserted += r[1].as<int64_t>();
    c.updated += r[2].as<int64_t>();
    c.deleted += r[3].as<int64_t>();
    c.unchanged += r[4].as<int64_t>();
    c.stale += r[5].as<int64_t>();
  }
  return out;
}

}  // namespace leadsync::workers
