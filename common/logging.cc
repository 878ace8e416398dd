#include "common/logging.h"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "common/errors.h"
#include "common/redact.h"

namespace leadsync::common {
namespace {

// %j: the message, redacted and escaped for a JSON string, so that a JSON log line stays one valid
// document whatever the message contains (quotes, newlines from a source cell).
class JsonMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto escaped = json_escape(redact(std::string_view(msg.payload.data(), msg.payload.size())));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessageFlag>(); }
};

// %Q: the message with secrets redacted (a URL or conninfo quoted in an error), for text logs.
class RedactedMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    const auto text = redact(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(text.data(), text.data() + text.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<RedactedMessageFlag>(); }
};

}  // namespace

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  return out;
}

void setup_logging(const std::string& format, const std::string& level) {
  // Logs go to stderr so that commands whose stdout is a report (leadsyncctl, --once) stay parseable.
  spdlog::drop("leadsync");  // set up again (tests switch formats)
  auto logger = spdlog::stderr_logger_mt("leadsync");
  spdlog::set_default_logger(logger);
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<JsonMessageFlag>('j').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","pid":%P,"msg":"%j"})");
    spdlog::set_formatter(std::move(formatter));
  } else if (format == "text") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
    formatter->add_flag<RedactedMessageFlag>('Q').set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %^%-5l%$ %Q");
    spdlog::set_formatter(std::move(formatter));
  } else {
    throw ConfigError("--log-format: expected text or json, got '" + format + "'");
  }
  const auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") throw ConfigError("--log-level: unknown level '" + level + "'");
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::warn);
}

}  // namespace leadsync::common
