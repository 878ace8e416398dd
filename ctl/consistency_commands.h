// leadsyncctl's consistency commands (design.md §8, R7, R8): verify, plan, repair, rollback,
// explain, cleanup. Each has its own file (ctl/verify*, ctl/plan*, ctl/repair*, ctl/explain*); this one only
// registers their options and dispatches.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "ctl/retention.h"

namespace CLI {
class App;
}

namespace leadsync::ctl {

class ConsistencyCommands {
 public:
  explicit ConsistencyCommands(CLI::App& app);
  // The exit code of the chosen command, or nullopt when none of them was chosen.
  std::optional<int> dispatch(const common::Config& config);

 private:
  int verify(const common::Config& config);

  CLI::App* verify_ = nullptr;
  CLI::App* repair_ = nullptr;
  CLI::App* rollback_ = nullptr;
  CLI::App* explain_ = nullptr;
  CLI::App* plan_ = nullptr;
  CLI::App* cleanup_ = nullptr;
  Retention retention_;
  std::string source_;
  std::vector<std::string> fields_;
  std::vector<std::string> keys_;
  bool json_ = false;
  bool dry_run_ = false;
  std::size_t samples_ = 5;
  std::string metrics_file_;
  std::string backup_id_;
  std::string entity_;
  std::string key_;
};

}  // namespace leadsync::ctl
