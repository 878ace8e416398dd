#include "common/cli.h"

#include <prometheus/gauge.h>

#include <chrono>
#include <iostream>

#include "common/errors.h"
#include "common/logging.h"
#include "common/metric_names.h"
#include "common/redact.h"

namespace leadsync::common {

CommandLine::CommandLine(std::string program, const std::string& description, std::string default_log_level)
    : program_(std::move(program)), app_(description) {
  options_.log_level = std::move(default_log_level);
  app_.add_option("--config", options_.config_path, "configuration file (YAML)")->required();
  app_.add_option("--log-format", options_.log_format, "text or json")->check(CLI::IsMember({"text", "json"}));
  app_.add_option("--log-level", options_.log_level, "trace, debug, info, warn or error");
  app_.add_option("--metrics-address", options_.metrics_address, "serve /metrics, /healthz, /readyz on HOST:PORT");
  app_.set_version_flag("--version", program_ + " " + LEADSYNC_VERSION);
}

std::optional<int> CommandLine::parse(int argc, char** argv) {
  try {
    app_.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_.exit(e) == 0 ? kExitOk : kExitUsage;
  }
  return std::nullopt;
}

std::optional<Config> CommandLine::start(Telemetry& telemetry) {
  try {
    setup_logging(options_.log_format, options_.log_level);
    auto config = load_config(options_.config_path);
    if (!options_.metrics_address.empty()) telemetry.serve(options_.metrics_address);
    return config;
  } catch (const std::exception& e) {
    std::cerr << program_ << ": " << redact(e.what()) << "\n";
    return std::nullopt;
  }
}

void export_source_schedules(prometheus::Registry& registry, const Config& config) {
  auto& family = prometheus::BuildGauge()
                     .Name(metric::kSourceScheduleSeconds)
                     .Help("The configured schedule of a source (sources[].schedule)")
                     .Register(registry);
  for (const auto& s : config.sources) {
    family.Add({{"source", s.name}}).Set(std::chrono::duration<double>(s.schedule).count());
  }
}

}  // namespace leadsync::common
