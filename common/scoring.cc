#include "common/scoring.h"

#include <re2/re2.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <set>

#include "common/config.h"
#include "common/config_node.h"

namespace leadsync::common {

using config_detail::Node;

enum class CondOp { kEquals, kIn, kContains, kMatches, kGt, kGte, kLt, kLte, kExists, kAgeDays, kAll, kAny, kNot };

struct RuleSet::Condition {
  CondOp op = CondOp::kEquals;
  std::string field;
  FieldType type = FieldType::kText;
  std::vector<Value> operands;         // equals (1), in (n), contains (1, a text), gt..lte (1)
  std::shared_ptr<const re2::RE2> regex;  // matches
  bool exists = true;                  // exists
  CondOp age_compare = CondOp::kGt;    // age_days: gt, gte, lt or lte ...
  double age_days = 0;                 // ... this many days
  std::vector<Condition> children;     // all, any (n), not (1)
};

struct RuleSet::Rule {
  std::string name;
  int64_t points = 0;
  Condition when;
};

RuleSet::RuleSet() = default;
RuleSet::~RuleSet() = default;

namespace {

// Every condition, however deeply nested, has one schema path: the configuration reference then
// documents the condition language once (docs/configuration.md "Conditions").
constexpr const char* kConditionSchema = "<condition>";

bool is_null(const Value* v) {
  return v == nullptr || v->kind_case() == Value::KIND_NOT_SET || v->kind_case() == Value::kNullValue;
}

// Ints, floats, dates and timestamps as one ordered number. long double holds every int64 exactly.
long double number(const Value& v) {
  switch (v.kind_case()) {
    case Value::kIntValue: return static_cast<long double>(v.int_value());
    case Value::kDoubleValue: return static_cast<long double>(v.double_value());
    case Value::kTimestampMicros: return static_cast<long double>(v.timestamp_micros());
    default: return 0;
  }
}

bool compare(CondOp op, long double a, long double b) {
  switch (op) {
    case CondOp::kGt: return a > b;
    case CondOp::kGte: return a >= b;
    case CondOp::kLt: return a < b;
    case CondOp::kLte: return a <= b;
    default: return false;
  }
}

bool ordered(FieldType t) {
  return t == FieldType::kInt || t == FieldType::kFloat || t == FieldType::kDate || t == FieldType::kTimestamp;
}

const std::vector<std::pair<const char*, CondOp>>& leaf_ops() {
  static const std::vector<std::pair<const char*, CondOp>> ops = {
      {"equals", CondOp::kEquals}, {"in", CondOp::kIn},     {"contains", CondOp::kContains},
      {"matches", CondOp::kMatches}, {"gt", CondOp::kGt},   {"gte", CondOp::kGte},
      {"lt", CondOp::kLt},         {"lte", CondOp::kLte},   {"exists", CondOp::kExists},
      {"age_days", CondOp::kAgeDays}};
  return ops;
}

// The operand as a value of the field's type, normalised like the field's cells.
Value operand(const Node& n, const FieldConfig& field) {
  std::string error;
  auto v = coerce_text(field, n.str(), error);
  if (!v) n.fail(error);
  if (is_null(&*v)) n.fail("an empty operand matches nothing; use `exists: false` for a missing value");
  return *v;
}

using Fields = std::vector<FieldConfig>;

const FieldConfig& find_field(const Node& n, const Fields& fields, const std::string& name) {
  for (const auto& f : fields) {
    if (f.name == name) return f;
  }
  n.fail("'" + name + "' is not a field of the entity (or is computed after this rule runs)");
}

RuleSet::Condition parse_condition(const Node& n, const Fields& fields) {
  RuleSet::Condition c;
  const auto keys = n.keys();
  for (const auto* combinator : {"all", "any", "not"}) {
    if (std::find(keys.begin(), keys.end(), combinator) == keys.end()) continue;
    if (keys.size() != 1) n.fail(std::string("`") + combinator + "` stands alone in its condition");
  }
  std::vector<std::string> allowed = {"field", "all", "any", "not"};
  for (const auto& [name, op] : leaf_ops()) allowed.emplace_back(name);
  n.expect_map(allowed);
  if (keys.size() == 1 && (keys[0] == "all" || keys[0] == "any")) {
    c.op = keys[0] == "all" ? CondOp::kAll : CondOp::kAny;
    n.child(keys[0]).each_item([&](const Node& item) {
      c.children.push_back(parse_condition(item.with_schema(kConditionSchema), fields));
    });
    if (c.children.empty()) n.child(keys[0]).fail("needs at least one condition");
    return c;
  }
  if (keys.size() == 1 && keys[0] == "not") {
    c.op = CondOp::kNot;
    c.children.push_back(parse_condition(n.child("not").with_schema(kConditionSchema), fields));
    return c;
  }
  const auto& field = find_field(n.child("field"), fields, n.child("field").required_str());
  c.field = field.name;
  c.type = field.type;
  const char* op_name = nullptr;
  for (const auto& [name, op] : leaf_ops()) {
    if (std::find(keys.begin(), keys.end(), name) == keys.end()) continue;
    if (op_name) n.fail(std::string("one operator per condition, got `") + op_name + "` and `" + name + "`");
    op_name = name;
    c.op = op;
  }
  if (!op_name) n.fail("needs an operator (equals, in, contains, matches, gt, gte, lt, lte, exists, age_days)");
  const auto on = n.child(op_name);
  auto wrong_type = [&](const char* expected) {
    on.fail(std::string("`") + op_name + "` applies to " + expected + " fields; '" + c.field + "' is " +
            field_type_name(c.type));
  };
  switch (c.op) {
    case CondOp::kEquals:
      if (c.type == FieldType::kJson) wrong_type("text, text_list, int, float, bool, date and timestamp");
      c.operands.push_back(operand(on, field));
      break;
    case CondOp::kIn:
      if (c.type == FieldType::kJson || c.type == FieldType::kTextList) {
        wrong_type("text, int, float, bool, date and timestamp");
      }
      on.each_item([&](const Node& item) { c.operands.push_back(operand(item, field)); });
      if (c.operands.empty()) on.fail("needs at least one value");
      break;
    case CondOp::kContains: {
      if (c.type != FieldType::kText && c.type != FieldType::kTextList) wrong_type("text and text_list");
      FieldConfig element = field;
      element.type = FieldType::kText;
      c.operands.push_back(operand(on, element));
      break;
    }
    case CondOp::kMatches: {
      if (c.type != FieldType::kText && c.type != FieldType::kTextList) wrong_type("text and text_list");
      auto re = std::make_shared<re2::RE2>(on.required_str(), re2::RE2::Quiet);
      if (!re->ok()) on.fail("invalid regular expression: " + re->error());
      c.regex = std::move(re);
      break;
    }
    case CondOp::kGt:
    case CondOp::kGte:
    case CondOp::kLt:
    case CondOp::kLte:
      if (!ordered(c.type)) wrong_type("int, float, date and timestamp");
      c.operands.push_back(operand(on, field));
      break;
    case CondOp::kExists: c.exists = on.boolean(true); break;
    case CondOp::kAgeDays: {
      if (c.type != FieldType::kDate && c.type != FieldType::kTimestamp) wrong_type("date and timestamp");
      on.expect_map({"gt", "gte", "lt", "lte"});
      const auto age_keys = on.keys();
      if (age_keys.size() != 1) on.fail("needs exactly one of gt, gte, lt, lte");
      for (const auto& [name, op] : leaf_ops()) {
        if (age_keys[0] == name) c.age_compare = op;
      }
      c.age_days = on.child(age_keys[0]).number();
      break;
    }
    default: break;
  }
  return c;
}

bool holds(const RuleSet::Condition& c, const FieldMap& fields, int64_t now_micros) {
  switch (c.op) {
    case CondOp::kAll:
      return std::all_of(c.children.begin(), c.children.end(),
                         [&](const auto& child) { return holds(child, fields, now_micros); });
    case CondOp::kAny:
      return std::any_of(c.children.begin(), c.children.end(),
                         [&](const auto& child) { return holds(child, fields, now_micros); });
    case CondOp::kNot: return !holds(c.children.front(), fields, now_micros);
    default: break;
  }
  const auto it = fields.find(c.field);
  const Value* v = it == fields.end() ? nullptr : &it->second;
  if (c.op == CondOp::kExists) return c.exists != is_null(v);
  if (is_null(v)) return false;
  switch (c.op) {
    case CondOp::kEquals: return same_value(*v, c.operands.front());
    case CondOp::kIn:
      return std::any_of(c.operands.begin(), c.operands.end(), [&](const Value& o) { return same_value(*v, o); });
    case CondOp::kContains: {
      const auto& needle = c.operands.front().string_value();
      if (v->kind_case() == Value::kStringValue) return v->string_value().find(needle) != std::string::npos;
      const auto& items = v->string_list().values();
      return std::find(items.begin(), items.end(), needle) != items.end();
    }
    case CondOp::kMatches: {
      if (v->kind_case() == Value::kStringValue) return re2::RE2::PartialMatch(v->string_value(), *c.regex);
      const auto& items = v->string_list().values();
      return std::any_of(items.begin(), items.end(),
                         [&](const std::string& s) { return re2::RE2::PartialMatch(s, *c.regex); });
    }
    case CondOp::kGt:
    case CondOp::kGte:
    case CondOp::kLt:
    case CondOp::kLte: return compare(c.op, number(*v), number(c.operands.front()));
    case CondOp::kAgeDays: {
      const long double age = (static_cast<long double>(now_micros) - number(*v)) / 86'400'000'000.0L;
      return compare(c.age_compare, age, static_cast<long double>(c.age_days));
    }
    default: return false;
  }
}

const FieldConfig& computed_field(const Node& n, const EntityConfig& entity, FieldType type) {
  const auto name = n.required_str();
  const auto* f = entity.field(name);
  if (!f) n.fail("'" + name + "' is not a field of entity '" + entity.name + "'");
  if (f->role != FieldRole::kRules) n.fail("'" + name + "' must be declared `role: rules` (no source column may map it)");
  if (f->type != type) {
    n.fail("'" + name + "' must be of type " + field_type_name(type) + ", not " + field_type_name(f->type));
  }
  return *f;
}

std::vector<RuleSet::Rule> parse_rules(const Node& n, const Fields& visible, bool with_points) {
  std::vector<RuleSet::Rule> rules;
  std::set<std::string> names;
  if (!n.defined()) n.fail("is required: at least one rule");
  n.each_item([&](const Node& item) {
    if (with_points) {
      item.expect_map({"name", "points", "when"});
    } else {
      item.expect_map({"name", "when"});
    }
    RuleSet::Rule rule;
    rule.name = item.child("name").required_str();
    if (with_points && !names.insert(rule.name).second) item.child("name").fail("rule names must be unique");
    if (with_points) {
      if (!item.child("points").defined()) item.child("points").fail("is required");
      rule.points = item.child("points").integer(0, -1'000'000, 1'000'000);
    }
    const auto when = item.child("when");
    if (!when.defined()) when.fail("is required");
    rule.when = parse_condition(when.with_schema(kConditionSchema), visible);
    rules.push_back(std::move(rule));
  });
  return rules;
}

bool reads_clock(const RuleSet::Condition& c) {
  return c.op == CondOp::kAgeDays || std::any_of(c.children.begin(), c.children.end(), reads_clock);
}

}  // namespace

std::shared_ptr<const RuleSet> RuleSet::parse(const Node& n, const EntityConfig& entity) {
  const auto scoring = n.child("scoring");
  const auto segments = n.child("segments");
  if (!scoring.defined() && !segments.defined()) return nullptr;
  if (entity.partial_events) {
    (scoring.defined() ? scoring : segments)
        .fail("scores and segments are computed from a record's full image; an entity with partial_events "
              "cannot have them");
  }
  auto rules = std::make_shared<RuleSet>();
  // What a rule may read: the entity's source fields; segment rules may also read the score.
  Fields visible;
  for (const auto& f : entity.fields) {
    if (f.role == FieldRole::kSource) visible.push_back(f);
  }
  std::string fingerprint;
  if (scoring.defined()) {
    scoring.expect_map({"field", "floor", "cap", "rules"});
    const auto& field = computed_field(scoring.child("field"), entity, FieldType::kInt);
    rules->score_field_ = field.name;
    if (scoring.child("floor").defined()) rules->floor_ = scoring.child("floor").integer(0, -1'000'000'000, 1'000'000'000);
    if (scoring.child("cap").defined()) rules->cap_ = scoring.child("cap").integer(0, -1'000'000'000, 1'000'000'000);
    if (rules->floor_ && rules->cap_ && *rules->floor_ > *rules->cap_) scoring.child("cap").fail("is below floor");
    rules->score_rules_ = parse_rules(scoring.child("rules"), visible, true);
    fingerprint += "scoring:" + scoring.dump() + "\n";
    visible.push_back(field);
  }
  if (segments.defined()) {
    segments.expect_map({"field", "default", "rules"});
    rules->segment_field_ = computed_field(segments.child("field"), entity, FieldType::kText).name;
    if (segments.child("default").defined()) rules->default_segment_ = segments.child("default").required_str();
    rules->segment_rules_ = parse_rules(segments.child("rules"), visible, false);
    fingerprint += "segments:" + segments.dump() + "\n";
  }
  for (const auto* list : {&rules->score_rules_, &rules->segment_rules_}) {
    for (const auto& rule : *list) rules->uses_clock_ = rules->uses_clock_ || reads_clock(rule.when);
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(XXH3_64bits(fingerprint.data(), fingerprint.size())));
  rules->version_ = hex;
  rules->definition_ = std::move(fingerprint);
  return rules;
}

int64_t RuleSet::score(const FieldMap& fields, int64_t now_micros, Explanation* why) const {
  int64_t raw = 0;
  for (const auto& rule : score_rules_) {
    if (!holds(rule.when, fields, now_micros)) continue;
    raw += rule.points;
    if (why) why->matched.push_back({rule.name, rule.points});
  }
  if (why) why->raw_score = raw;
  if (floor_) raw = std::max(raw, *floor_);
  if (cap_) raw = std::min(raw, *cap_);
  return raw;
}

const std::string* RuleSet::segment(const FieldMap& fields, int64_t now_micros, Explanation* why) const {
  for (const auto& rule : segment_rules_) {
    if (holds(rule.when, fields, now_micros)) {
      if (why) why->segment_rule = rule.name;
      return &rule.name;
    }
  }
  return default_segment_ ? &*default_segment_ : nullptr;
}

std::vector<std::string> RuleSet::score_rule_names() const {
  std::vector<std::string> names;
  for (const auto& rule : score_rules_) names.push_back(rule.name);
  return names;
}

RuleSet::Explanation RuleSet::explain(const FieldMap& fields, int64_t now_micros) const {
  Explanation out;
  FieldMap computed = fields;
  if (!score_field_.empty()) {
    out.score = score(fields, now_micros, &out);
    computed[score_field_].set_int_value(*out.score);
  }
  if (!segment_field_.empty()) {
    if (const auto* s = segment(computed, now_micros, &out)) out.segment = *s;
  }
  return out;
}

void RuleSet::apply(FieldMap& fields, int64_t now_micros) const {
  // The score first: segment rules may read it.
  if (!score_field_.empty()) fields[score_field_].set_int_value(score(fields, now_micros, nullptr));
  if (!segment_field_.empty()) {
    if (const auto* s = segment(fields, now_micros, nullptr)) {
      fields[segment_field_].set_string_value(*s);
    } else {
      fields[segment_field_].set_null_value(true);
    }
  }
}

}  // namespace leadsync::common
