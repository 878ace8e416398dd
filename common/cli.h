// The command-line, logging and telemetry set-up the three executables share (interfaces.md
// "Executables"): --config, --help, --version, --log-format, --log-level, --metrics-address, and
// exit code 2 for every usage or configuration error, with a message naming what is wrong.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>

#include "common/config.h"
#include "common/telemetry.h"

namespace leadsync::common {

inline constexpr int kExitOk = 0, kExitFailed = 1, kExitUsage = 2;

struct CommonOptions {
  std::string config_path;
  std::string log_format = "text";
  std::string log_level = "info";
  std::string metrics_address;
};

class CommandLine {
 public:
  // `program` is the executable's name (leadsync-worker); it prefixes --version and start-up errors.
  CommandLine(std::string program, const std::string& description, std::string default_log_level = "info");

  CLI::App& app() { return app_; }
  const CommonOptions& options() const { return options_; }
  const std::string& program() const { return program_; }

  // Parses argv. Returns the exit code when the process should stop now (--help, --version: 0;
  // a usage error: 2, printed by CLI11), nullopt to go on.
  std::optional<int> parse(int argc, char** argv);

  // Sets up logging, loads the configuration and starts serving /metrics when asked. Returns
  // nullopt after printing "<program>: <what>" to stderr on any error (the caller exits 2).
  std::optional<Config> start(Telemetry& telemetry);

 private:
  std::string program_;
  CLI::App app_;
  CommonOptions options_;
};

// leadsync_source_schedule_seconds{source} for each configured source (the producer exports it, so
// that an alert can compare the time since the last success with the schedule).
void export_source_schedules(prometheus::Registry& registry, const Config& config);

}  // namespace leadsync::common
