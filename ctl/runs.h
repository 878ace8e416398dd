// leadsyncctl's run commands (design.md §6, R3, R4): runs, trigger, pause, resume, cancel. They
// talk only to the run store in PostgreSQL; the producer service obeys what they write.
#pragma once

#include <optional>
#include <string>

#include "common/config.h"

namespace CLI {
class App;
}

namespace leadsync::ctl {

class RunCommands {
 public:
  // Registers the subcommands on `app`; the options live in this object.
  explicit RunCommands(CLI::App& app);
  // The exit code of the chosen run command, or nullopt when none of them was chosen. Refusals
  // (already running, paused, nothing to cancel) throw common::RunConflict, an unknown source
  // common::ConfigError.
  std::optional<int> dispatch(const common::Config& config);

 private:
  CLI::App* runs_ = nullptr;
  CLI::App* trigger_ = nullptr;
  CLI::App* pause_ = nullptr;
  CLI::App* resume_ = nullptr;
  CLI::App* cancel_ = nullptr;
  std::string source_;
  int limit_ = 20;
  bool json_ = false;
  bool wait_ = false;
  bool full_ = false;
  bool queue_ = false;
  int timeout_s_ = 3600;
};

}  // namespace leadsync::ctl
