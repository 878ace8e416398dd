#include "workers/validate.h"

namespace leadsync::workers {
namespace {

// What is wrong with a text value, found in one pass: PostgreSQL's text cannot hold a NUL byte,
// and libpq's parameters end at one; text must be valid UTF-8 (the database's encoding; Unicode
// 15, table 3-7: no overlongs, no surrogates, nothing above U+10FFFF). Either would fail the
// batch's statement, or worse, identity resolution outside the per-record isolation.
struct TextFault {
  enum class Kind { kNone, kNul, kInvalidUtf8 } kind = Kind::kNone;
  std::size_t at = 0;  // 1-based byte position
};

TextFault text_fault(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const std::size_t n = s.size();
  for (std::size_t i = 0; i < n;) {
    const unsigned c = p[i];
    std::size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
    if (c < 0x80) {
      if (c == 0) return {TextFault::Kind::kNul, i + 1};
      ++i;
      continue;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    } else {
      return {TextFault::Kind::kInvalidUtf8, i + 1};
    }
    if (i + len > n || p[i + 1] < lo || p[i + 1] > hi) return {TextFault::Kind::kInvalidUtf8, i + 1};
    for (std::size_t k = 2; k < len; ++k) {
      if (p[i + k] < 0x80 || p[i + k] > 0xBF) return {TextFault::Kind::kInvalidUtf8, i + 1};
    }
    i += len;
  }
  return {};
}

// The message for a faulty text, naming it by `what()`: built only when there is a fault, since
// every value of every event passes here (the worker's hot path).
template <typename What>
std::string text_problem(What what, std::string_view s) {
  const auto fault = text_fault(s);
  switch (fault.kind) {
    case TextFault::Kind::kNone: return "";
    case TextFault::Kind::kNul: return what() + " contains a NUL byte at byte " + std::to_string(fault.at);
    case TextFault::Kind::kInvalidUtf8: return what() + " is not valid UTF-8 at byte " + std::to_string(fault.at);
  }
  return "";
}

std::string value_text_problem(const std::string& field, const common::Value& v) {
  const auto what = [&] { return "field '" + field + "'"; };
  switch (v.kind_case()) {
    case common::Value::kStringValue: return text_problem(what, v.string_value());
    case common::Value::kJsonValue: return text_problem(what, v.json_value());
    case common::Value::kStringList:
      for (int i = 0; i < v.string_list().values_size(); ++i) {
        auto problem = text_problem([&] { return what() + " item " + std::to_string(i + 1); }, v.string_list().values(i));
        if (!problem.empty()) return problem;
      }
      return "";
    default: return "";
  }
}

bool carried(const common::FieldConfig& f) {
  return f.role == common::FieldRole::kSource || f.role == common::FieldRole::kRules;
}

// The common case, a valid full image, in one hash lookup per field of the entity: true when every
// carried field is there, every field the event names is one of the entity's and every value fits.
// False means "not sure": the full check below then finds and names what is wrong. (That check
// looks each named field up by a linear search and each carried field up again: about 1 µs per
// event, most of the validation's cost on the worker's hot path.)
bool plainly_fitting_full_image(const common::EntityConfig& entity, const common::ChangeEvent& e) {
  const auto& fields = e.fields();
  std::size_t matched = 0;
  for (const auto& f : entity.fields) {
    const auto it = fields.find(f.name);
    if (it == fields.end()) {
      if (carried(f)) return false;
      continue;
    }
    ++matched;
    const auto& v = it->second;
    if (v.kind_case() == common::Value::kStringValue || v.kind_case() == common::Value::kJsonValue ||
        v.kind_case() == common::Value::kStringList) {
      if (!value_text_problem(f.name, v).empty()) return false;
    }
    if (!common::check_value(f, v).empty()) return false;
  }
  return matched == static_cast<std::size_t>(fields.size());
}

}  // namespace

std::string validate_event(const common::Config& config, const common::ChangeEvent& e) {
  const auto it = config.entities.find(e.entity());
  if (it == config.entities.end()) return "unknown entity '" + e.entity() + "'";
  return validate_event(it->second, e);
}

std::string validate_event(const common::EntityConfig& entity, const common::ChangeEvent& e) {
  if (e.key().empty()) return "empty key";
  for (const auto& [what, text] : {std::pair<const char*, const std::string*>{"key", &e.key()},
                                   {"source", &e.source()},
                                   {"origin", &e.origin()},
                                   {"run_id", &e.run_id()},
                                   {"event_id", &e.event_id()}}) {
    if (auto problem = text_problem([what = what] { return std::string(what); }, *text); !problem.empty()) {
      return problem;
    }
  }
  if (e.op() != leadsync::v1::OP_UPSERT && e.op() != leadsync::v1::OP_DELETE) {
    return "op must be UPSERT or DELETE, got " + std::to_string(static_cast<int>(e.op()));
  }
  if (e.source_version() <= 0) return "source_version must be positive";
  if (e.op() == leadsync::v1::OP_DELETE) return "";
  if (e.partial() && !entity.partial_events) {
    return "partial events are not accepted for entity '" + entity.name + "' (set partial_events: true)";
  }
  if (e.partial() && e.fields().empty()) return "partial event names no field";
  if (!e.partial() && plainly_fitting_full_image(entity, e)) return "";
  for (const auto& [name, value] : e.fields()) {
    const auto* f = entity.field(name);
    if (!f) return "field '" + name + "' is not a field of entity '" + entity.name + "'";
    if (auto problem = value_text_problem(name, value); !problem.empty()) return problem;
    if (auto problem = common::check_value(*f, value); !problem.empty()) return problem;
  }
  if (e.partial()) return "";
  // A full image names every field: a missing one would be silently nulled (R6). A write-back or computed
  // field is no source's: the apply keeps it (postgres_sql.cc), so a full image does not name it.
  for (const auto& f : entity.fields) {
    if (carried(f) && !e.fields().count(f.name)) return "full event lacks field '" + f.name + "'";
  }
  return "";
}

}  // namespace leadsync::workers
