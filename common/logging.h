// Process-wide logging setup: text for people, JSON lines for log collectors (--log-format).
#pragma once

#include <string>

namespace leadsync::common {

// format: "text" or "json"; level: trace|debug|info|warn|error. Throws ConfigError on bad values.
void setup_logging(const std::string& format, const std::string& level = "info");

// Escapes a string for a JSON string literal (without the quotes).
std::string json_escape(std::string_view s);

}  // namespace leadsync::common
