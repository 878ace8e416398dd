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
void add_integer(common::BinaryTextArray& out, int64_t n) {
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
bool add_timestamp(common::BinaryTextArray& out, int64_t micros, bool date_only) {
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
void add_sql_text(common::BinaryTextArray& out, const common::FieldConfig& field, const Value& v) {
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
      prepared_name_("leadsync_merge_" + entity.name) {}

std::vector<std::string> EntityApplier::parameters(const std::vector<const common::ChangeEvent*>& events) const {
  const auto& columns = statement_.columns;
  std::vector<common::BinaryTextArray> staged(columns.size());
  for (auto& c : staged) c.reserve(events.size() * 16);
  for (const auto* e : events) {
    for (std::size_t c = 0; c < columns.size(); ++c) {
      auto& out = staged[c];
      switch (columns[c]) {
        case StagedColumn::kKey: out.add(e->key()); break;
        case StagedColumn::kField: {
          const auto& f = entity_.fields[static_cast<std::size_t>(statement_.column_field[c])];
          const auto it = e->fields().find(f.name);
          // A tombstone stages no values: the statement keeps the record's last ones.
          if (is_delete(*e) || it == e->fields().end()) {
            out.add_null();
          } else {
            add_sql_text(out, f, it->second);
          }
          break;
        }
        case StagedColumn::kVersion: add_integer(out, e->source_version()); break;
        case StagedColumn::kDeleted: out.add(std::string_view(is_delete(*e) ? "t" : "f")); break;
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
  tx.conn().prepare(prepared_name_, statement_.sql);
  // Every parameter travels in binary (a text[] as array_send writes it, the entity's name as its
  // bytes): the server copies the elements instead of parsing a literal.
  std::vector<pqxx::binarystring> binary;
  for (const auto& p : parameters(events)) binary.emplace_back(p.data(), p.size());
  const auto rows = tx.exec_prepared(prepared_name_, pqxx::prepare::make_dynamic_params(binary));
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
