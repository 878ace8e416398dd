// R15 — scoring and segments declared in the config: every operator on matching, non-matching and
// null values; floor and cap; first-match segments; and the start-up checks that name the key path
// of a bad rule (unknown field, wrong type for an operator, invalid regex, computed-field misuse).
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/errors.h"
#include "common/scoring.h"

namespace leadsync::common {
namespace {

constexpr int64_t kDay = 86'400'000'000;
constexpr int64_t kNow = 1'780'000'000'000'000;  // 2026-05-28

std::string config_with(const std::string& entity_extra, const std::string& extra_fields = "") {
  return R"(
entities:
  lead:
    table: leads
    key: lead_id
    fields:
      email: {type: text, normalize: lower_trim}
      status: {type: text, normalize: lower_trim}
      company: {type: text}
      tags: {type: text_list, normalize: lower_trim}
      employees: {type: int}
      revenue: {type: float}
      active: {type: bool}
      updated_at: {type: timestamp}
      founded: {type: date}
      extra: {type: json}
      priority: {type: int, role: rules}
      segment: {type: text, role: rules}
)" + extra_fields + entity_extra + R"(
sources:
  - name: s
    kind: csv
    entity: lead
    url: /tmp/x.csv
    key_column: id
    columns: {id: lead_id, email: email, status: status, company: company, tags: tags, employees: employees,
              revenue: revenue, active: active, updated_at: updated_at, founded: founded, extra: extra}
)";
}

// A config whose scoring has the one rule `when` (10 points) and a segment rule on the score.
Config one_rule(const std::string& when) {
  return parse_config(config_with("    scoring:\n      field: priority\n      rules:\n        - {name: r, points: 10, when: " +
                                  when + "}\n    segments:\n      field: segment\n      rules:\n        - {name: "
                                  "hot, when: {field: priority, gte: 10}}\n"));
}

FieldMap record() {
  FieldMap f;
  f["email"].set_string_value("ann@acme.com");
  f["status"].set_string_value("qualified");
  f["company"].set_string_value("Acme Inc");
  auto* tags = f["tags"].mutable_string_list();
  tags->add_values("referral");
  tags->add_values("webinar");
  f["employees"].set_int_value(250);
  f["revenue"].set_double_value(1.5e6);
  f["active"].set_bool_value(true);
  f["updated_at"].set_timestamp_micros(kNow - 10 * kDay);
  f["founded"].set_timestamp_micros(kNow - 4000 * kDay);
  f["extra"].set_json_value("{}");
  return f;
}

// The score the one rule gives `fields`: 10 when it matches, 0 when not.
int64_t score(const std::string& when, const FieldMap& fields = record()) {
  const auto config = one_rule(when);
  const auto& rules = *config.entities.at("lead").rules;
  auto copy = fields;
  rules.apply(copy, kNow);
  const auto priority = copy.at("priority").int_value();
  if (priority >= 10) {
    EXPECT_EQ(copy["segment"].string_value(), "hot");
  } else {
    EXPECT_EQ(copy["segment"].kind_case(), Value::kNullValue);  // no default: NULL unless hot
  }
  return priority;
}

void expect_config_error(const std::string& yaml, const std::string& where, const std::string& what) {
  try {
    parse_config(yaml);
    ADD_FAILURE() << "accepted: " << yaml;
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(where), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
  }
}

void expect_rule_error(const std::string& when, const std::string& what) {
  expect_config_error(config_with("    scoring:\n      field: priority\n      rules:\n        - {name: r, points: 1, when: " +
                                  when + "}\n"),
                      "entities.lead.scoring.rules[0].when", what);
}

TEST(Scoring, R15_EqualsComparesInTheFieldsTypeAndNormalisation) {
  EXPECT_EQ(score("{field: status, equals: ' Qualified '}"), 10);  // normalised like the cells
  EXPECT_EQ(score("{field: status, equals: lost}"), 0);
  EXPECT_EQ(score("{field: employees, equals: 250}"), 10);
  EXPECT_EQ(score("{field: employees, equals: 251}"), 0);
  EXPECT_EQ(score("{field: active, equals: yes}"), 10);
  EXPECT_EQ(score("{field: revenue, equals: 1500000}"), 10);
  EXPECT_EQ(score("{field: tags, equals: 'referral,webinar'}"), 10);
  EXPECT_EQ(score("{field: tags, equals: referral}"), 0);
}

TEST(Scoring, R15_InMatchesAnyListedValue) {
  EXPECT_EQ(score("{field: status, in: [proposal, QUALIFIED]}"), 10);
  EXPECT_EQ(score("{field: status, in: [proposal, lost]}"), 0);
  EXPECT_EQ(score("{field: employees, in: [1, 250]}"), 10);
}

TEST(Scoring, R15_ContainsIsASubstringOfTextAndAnElementOfAList) {
  EXPECT_EQ(score("{field: company, contains: Inc}"), 10);
  EXPECT_EQ(score("{field: company, contains: inc}"), 0);  // company is not normalised
  EXPECT_EQ(score("{field: tags, contains: REFERRAL}"), 10);
  EXPECT_EQ(score("{field: tags, contains: refer}"), 0);  // an element, not a substring of one
}

TEST(Scoring, R15_MatchesIsAnRe2SearchInTextOrAnyListElement) {
  EXPECT_EQ(score(R"({field: email, matches: '@acme\.com$'})"), 10);
  EXPECT_EQ(score(R"({field: email, matches: '^acme'})"), 0);
  EXPECT_EQ(score("{field: company, matches: '(?i)^acme'}"), 10);
  EXPECT_EQ(score("{field: tags, matches: '^web'}"), 10);
  EXPECT_EQ(score("{field: tags, matches: '^x'}"), 0);
}

TEST(Scoring, R15_OrderedComparisonsOnNumbersDatesAndTimestamps) {
  EXPECT_EQ(score("{field: employees, gt: 249}"), 10);
  EXPECT_EQ(score("{field: employees, gt: 250}"), 0);
  EXPECT_EQ(score("{field: employees, gte: 250}"), 10);
  EXPECT_EQ(score("{field: employees, lt: 250}"), 0);
  EXPECT_EQ(score("{field: employees, lte: 250}"), 10);
  EXPECT_EQ(score("{field: revenue, gt: 1000000.5}"), 10);
  EXPECT_EQ(score("{field: founded, lt: 2020-01-01}"), 10);
  EXPECT_EQ(score("{field: updated_at, gte: '2026-05-01 00:00:00'}"), 10);
  EXPECT_EQ(score("{field: updated_at, gte: '2026-06-01T00:00:00Z'}"), 0);
}

TEST(Scoring, R15_ExistsAndNullValues) {
  auto f = record();
  f["company"].set_null_value(true);
  f.erase("status");
  EXPECT_EQ(score("{field: company, exists: true}", f), 0);
  EXPECT_EQ(score("{field: company, exists: false}", f), 10);
  EXPECT_EQ(score("{field: status, exists: false}", f), 10);  // absent is null
  EXPECT_EQ(score("{field: email, exists: true}", f), 10);
  // A null field matches no comparison, and `not` of one therefore matches.
  EXPECT_EQ(score("{field: company, contains: Inc}", f), 0);
  EXPECT_EQ(score("{not: {field: company, contains: Inc}}", f), 10);
}

TEST(Scoring, R15_AgeDaysCountsFromTheRunsClock) {
  EXPECT_EQ(score("{field: updated_at, age_days: {lte: 10}}"), 10);
  EXPECT_EQ(score("{field: updated_at, age_days: {lt: 10}}"), 0);
  EXPECT_EQ(score("{field: updated_at, age_days: {gt: 9.5}}"), 10);
  EXPECT_EQ(score("{field: founded, age_days: {gte: 3650}}"), 10);
  EXPECT_TRUE(one_rule("{field: updated_at, age_days: {lte: 10}}").entities.at("lead").rules->uses_clock());
  EXPECT_FALSE(one_rule("{field: employees, gt: 1}").entities.at("lead").rules->uses_clock());
}

TEST(Scoring, R15_AllAnyNotCombine) {
  EXPECT_EQ(score("{all: [{field: employees, gt: 100}, {field: status, equals: qualified}]}"), 10);
  EXPECT_EQ(score("{all: [{field: employees, gt: 100}, {field: status, equals: lost}]}"), 0);
  EXPECT_EQ(score("{any: [{field: employees, gt: 1000}, {field: status, equals: qualified}]}"), 10);
  EXPECT_EQ(score("{any: [{field: employees, gt: 1000}, {field: status, equals: lost}]}"), 0);
  EXPECT_EQ(score("{not: {any: [{field: employees, gt: 1000}, {not: {field: tags, contains: webinar}}]}}"), 10);
}

TEST(Scoring, R15_PointsAddUpWithinFloorAndCap) {
  const auto config = parse_config(config_with(R"(    scoring:
      field: priority
      floor: 0
      cap: 25
      rules:
        - {name: big, points: 20, when: {field: employees, gte: 100}}
        - {name: qualified, points: 15, when: {field: status, equals: qualified}}
        - {name: lost, points: -50, when: {field: status, equals: lost}}
        - {name: never, points: 7, when: {field: employees, lt: 0}}
    segments: {field: segment, rules: [{name: any, when: {field: priority, gte: 0}}]}
)"));
  const auto& rules = *config.entities.at("lead").rules;
  auto f = record();
  const auto why = rules.explain(f, kNow);
  EXPECT_EQ(why.raw_score, 35);
  EXPECT_EQ(why.score, 25);  // capped
  ASSERT_EQ(why.matched.size(), 2u);
  EXPECT_EQ(why.matched[0].rule, "big");
  EXPECT_EQ(why.matched[1].rule, "qualified");
  rules.apply(f, kNow);
  EXPECT_EQ(f.at("priority").int_value(), 25);
  f["status"].set_string_value("lost");
  rules.apply(f, kNow);
  EXPECT_EQ(f.at("priority").int_value(), 0);  // 20 - 50, floored
}

TEST(Scoring, R15_SegmentsFirstMatchWinsAndMayReadTheScore) {
  const auto config = parse_config(config_with(R"(    scoring:
      field: priority
      rules:
        - {name: big, points: 60, when: {field: employees, gte: 100}}
    segments:
      field: segment
      default: nurture
      rules:
        - {name: hot, when: {field: priority, gte: 50}}
        - {name: enterprise, when: {field: company, matches: 'Inc$'}}
)"));
  const auto& rules = *config.entities.at("lead").rules;
  auto f = record();
  rules.apply(f, kNow);
  EXPECT_EQ(f.at("segment").string_value(), "hot");  // both match: the first wins
  EXPECT_EQ(rules.explain(f, kNow).segment_rule, "hot");
  f["employees"].set_int_value(5);
  rules.apply(f, kNow);
  EXPECT_EQ(f.at("segment").string_value(), "enterprise");
  f["company"].set_string_value("Acme");
  rules.apply(f, kNow);
  EXPECT_EQ(f.at("segment").string_value(), "nurture");
  const auto why = rules.explain(f, kNow);
  EXPECT_EQ(why.segment, "nurture");
  EXPECT_EQ(why.segment_rule, "");  // the default
}

TEST(Scoring, R15_TheVersionChangesWithTheRulesOnly) {
  const auto a = one_rule("{field: employees, gt: 1}");
  const auto b = one_rule("{field: employees, gt: 1}");
  const auto c = one_rule("{field: employees, gt: 2}");
  EXPECT_EQ(a.entities.at("lead").rules->version(), b.entities.at("lead").rules->version());
  EXPECT_NE(a.entities.at("lead").rules->version(), c.entities.at("lead").rules->version());
  EXPECT_EQ(a.entities.at("lead").rules->version().size(), 16u);
}

TEST(Scoring, R15_AnOperatorThatDoesNotFitTheFieldIsAConfigError) {
  expect_rule_error("{field: company, gt: 3}", "`gt` applies to int, float, date and timestamp fields; 'company' is text");
  expect_rule_error("{field: employees, contains: 3}", "`contains` applies to text and text_list fields");
  expect_rule_error("{field: employees, matches: '3'}", "`matches` applies to text and text_list fields");
  expect_rule_error("{field: employees, age_days: {gt: 3}}", "`age_days` applies to date and timestamp fields");
  expect_rule_error("{field: extra, equals: '{}'}", "`equals` applies to");
  expect_rule_error("{field: tags, in: [a]}", "`in` applies to");
}

TEST(Scoring, R15_MalformedRulesAreConfigErrorsNamingTheKeyPath) {
  expect_rule_error("{field: nope, equals: 1}", "'nope' is not a field of the entity");
  expect_rule_error("{field: email, matches: '(unclosed'}", "invalid regular expression");
  expect_rule_error("{field: employees, equals: many}", "expects an integer");
  expect_rule_error("{field: employees, equals: ''}", "use `exists: false`");
  expect_rule_error("{field: employees}", "needs an operator");
  expect_rule_error("{field: employees, gt: 1, lt: 5}", "one operator per condition");
  expect_rule_error("{field: employees, between: 1}", "unknown key 'between'");
  expect_rule_error("{all: []}", "needs at least one condition");
  expect_rule_error("{all: [{field: employees, gt: 1}], field: email}", "`all` stands alone");
  expect_rule_error("{field: updated_at, age_days: {gt: 1, lt: 3}}", "exactly one of gt, gte, lt, lte");
  expect_rule_error("{field: updated_at, age_days: {gt: soon}}", "expected a number");
  expect_rule_error("{field: priority, gt: 1}", "'priority' is not a field of the entity");  // its own output
  // The nested condition names its own path.
  expect_config_error(config_with("    scoring:\n      field: priority\n      rules:\n        - {name: r, points: 1, when: "
                                  "{any: [{field: email, exists: true}, {field: bogus, exists: true}]}}\n"),
                      "entities.lead.scoring.rules[0].when.any[1].field", "'bogus' is not a field");
}

TEST(Scoring, R15_ComputedFieldsAreCheckedAtStartUp) {
  // Scoring into a field that is not computed, or of the wrong type.
  expect_config_error(config_with("    scoring:\n      field: employees\n      rules:\n        - {name: r, points: 1, when: "
                                  "{field: employees, gt: 1}}\n"),
                      "entities.lead.scoring.field", "must be declared `role: rules`");
  expect_config_error(config_with("    scoring:\n      field: segment\n      rules:\n        - {name: r, points: 1, when: "
                                  "{field: employees, gt: 1}}\n"),
                      "entities.lead.scoring.field", "must be of type int");
  // A computed field that no rule writes.
  expect_config_error(config_with("    scoring:\n      field: priority\n      rules:\n        - {name: r, points: 1, when: "
                                  "{field: employees, gt: 1}}\n"),
                      "entities.lead.fields.segment.role", "neither `scoring` nor `segments` writes it");
  // Duplicate rule names, floor above cap.
  expect_config_error(config_with("    scoring:\n      field: priority\n      rules:\n        - {name: r, points: 1, when: "
                                  "{field: employees, gt: 1}}\n        - {name: r, points: 2, when: {field: employees, gt: 2}}\n"
                                  "    segments: {field: segment, rules: [{name: a, when: {field: priority, gt: 0}}]}\n"),
                      "entities.lead.scoring.rules[1].name", "unique");
  expect_config_error(config_with("    scoring:\n      field: priority\n      floor: 5\n      cap: 1\n      rules:\n"
                                  "        - {name: r, points: 1, when: {field: employees, gt: 1}}\n"
                                  "    segments: {field: segment, rules: [{name: a, when: {field: priority, gt: 0}}]}\n"),
                      "entities.lead.scoring.cap", "is below floor");
}

TEST(Scoring, R15_AComputedFieldCannotBeMappedFromAColumn) {
  auto yaml = config_with("    scoring:\n      field: priority\n      rules:\n        - {name: r, points: 1, when: "
                          "{field: employees, gt: 1}}\n    segments: {field: segment, rules: [{name: a, when: {field: "
                          "priority, gt: 0}}]}\n");
  yaml.replace(yaml.find("extra: extra}"), 13, "extra: extra, prio: priority}");
  expect_config_error(yaml, "sources.s.columns", "'prio' maps onto 'priority', which is declared role: rules");
}

TEST(Scoring, R15_TheExampleConfigWithRulesLoads) {
  const auto config = load_config(std::string(LEADSYNC_SOURCE_DIR) + "/examples/scoring.yaml");
  const auto& lead = config.entities.at("lead");
  ASSERT_TRUE(lead.rules);
  EXPECT_EQ(lead.rules->score_field(), "priority");
  EXPECT_EQ(lead.rules->segment_field(), "segment");
  EXPECT_EQ(lead.table, "scored_leads");
}

}  // namespace
}  // namespace leadsync::common
