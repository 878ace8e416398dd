// Lead scoring and segments (issue 14, R15): rules declared per entity in the YAML, applied by the
// producer to each mapped record before its checksum, so that the checksum covers the computed
// values and a rule change re-publishes exactly the records whose score or segment changes.
//
//   entities.lead.scoring:  {field: priority, floor: 0, cap: 100, rules: [{name, points, when}]}
//   entities.lead.segments: {field: segment, default: nurture, rules: [{name, when}]}   first match wins
//
// A condition (`when`) is one of
//   {field: F, equals: V} {field: F, in: [V...]} {field: F, contains: V} {field: F, matches: REGEX}
//   {field: F, gt|gte|lt|lte: V} {field: F, exists: true|false} {field: F, age_days: {gt|gte|lt|lte: N}}
//   {all: [C...]} {any: [C...]} {not: C}
// Operands are read as the field's own type (and normalised like its cells), so `equals: Qualified`
// on a lower_trim field matches "qualified". A null field matches nothing but `exists: false`.
// Everything is checked at start-up: an unknown field, an operator that does not fit the field's
// type or an invalid regular expression is a ConfigError naming the key path (exit 2).
//
// Scores are deterministic: a record's score depends on its own fields and on the run's clock (for
// age_days) only, never on the other records or the order in which they are read.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/mapping.h"

namespace leadsync::common {

struct EntityConfig;
namespace config_detail {
class Node;
}

class RuleSet {
 public:
  struct Match {
    std::string rule;
    int64_t points = 0;
  };
  // Why a record has the score and segment it has (leadsyncctl score, rules test).
  struct Explanation {
    std::optional<int64_t> score;      // after floor and cap; nullopt without scoring
    int64_t raw_score = 0;             // the sum of the matched rules' points
    std::vector<Match> matched;        // scoring rules that matched, in declaration order
    std::optional<std::string> segment;
    std::string segment_rule;          // the segment rule that matched; empty: the default
  };

  // Parses `scoring` and `segments` of the entity node `n` against the entity's fields. Returns null
  // when the entity declares neither.
  static std::shared_ptr<const RuleSet> parse(const config_detail::Node& n, const EntityConfig& entity);

  // Writes the computed fields into `fields` (the mapped record). `now_micros` is the run's clock.
  void apply(FieldMap& fields, int64_t now_micros) const;
  Explanation explain(const FieldMap& fields, int64_t now_micros) const;

  // A fingerprint of the rules as configured (hex), recorded with each run that applies them.
  const std::string& version() const { return version_; }
  // The rules as configured (YAML), stored once per version in leadsync.rule_sets.
  const std::string& definition() const { return definition_; }
  // True when a rule reads the clock (age_days): a record's score can then change while the
  // record does not, so an unchanged snapshot must still be scored again.
  bool uses_clock() const { return uses_clock_; }
  // The scoring rules' names, in declaration order.
  std::vector<std::string> score_rule_names() const;
  // The computed fields (empty when not configured).
  const std::string& score_field() const { return score_field_; }
  const std::string& segment_field() const { return segment_field_; }

  struct Condition;  // defined in scoring.cc
  struct Rule;
  ~RuleSet();
  RuleSet();

 private:
  int64_t score(const FieldMap& fields, int64_t now_micros, Explanation* why) const;
  const std::string* segment(const FieldMap& fields, int64_t now_micros, Explanation* why) const;

  std::string score_field_;
  std::optional<int64_t> floor_, cap_;
  std::vector<Rule> score_rules_;
  std::string segment_field_;
  std::optional<std::string> default_segment_;
  std::vector<Rule> segment_rules_;
  std::string version_;
  std::string definition_;
  bool uses_clock_ = false;
};

}  // namespace leadsync::common
