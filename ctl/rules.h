// leadsyncctl's rule commands (issue 14, R15): `score ENTITY KEY` explains one record's score and
// segment (the rules that matched, their points, floor and cap, and the audited changes of the
// computed fields with the rule-set version of the run that made them); `rules test ENTITY
// --sample N` applies the configured rules to N records of the entity's source and prints the score
// distribution, how often each rule matched and the segment counts, publishing nothing.
#pragma once

#include <optional>
#include <string>

#include "common/config.h"

namespace CLI {
class App;
}

namespace leadsync::ctl {

class RuleCommands {
 public:
  explicit RuleCommands(CLI::App& app);
  // The exit code of the chosen command, or nullopt when none of them was chosen.
  std::optional<int> dispatch(const common::Config& config);

 private:
  CLI::App* score_ = nullptr;
  CLI::App* test_ = nullptr;
  std::string entity_;
  std::string key_;
  std::string source_;
  int sample_ = 1000;
  bool json_ = false;
};

}  // namespace leadsync::ctl
