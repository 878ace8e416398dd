#include "common/kafka_handles.h"

#include <spdlog/spdlog.h>

#include <stdexcept>

#include "common/errors.h"

namespace leadsync::common {
namespace {

// syslog severities as librdkafka uses them: 0..2 emergencies, 3 error, 4 warning, 5..6 notice and
// info, 7 debug.
spdlog::level::level_enum spdlog_level(int level) {
  if (level <= 2) return spdlog::level::critical;
  if (level == 3) return spdlog::level::err;
  if (level == 4) return spdlog::level::warn;
  if (level <= 6) return spdlog::level::info;
  return spdlog::level::debug;
}

void log_rdkafka_error(const std::string& client, bool fatal, const std::string& reason) {
  // A broker restart or a moved coordinator raises transient errors that librdkafka recovers from
  // by itself; only a fatal error (the idempotent producer lost its state) ends the client.
  spdlog::log(fatal ? spdlog::level::critical : spdlog::level::warn, "kafka [{}] {}error: {}", client,
              fatal ? "fatal " : "", reason);
}

// librdkafka calls this from its own threads; spdlog's loggers are thread-safe. Stateless, so one
// instance serves every client and outlives them all.
class SpdlogEvents : public RdKafka::EventCb {
 public:
  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_LOG:
        log_rdkafka_line(static_cast<int>(event.severity()), "", event.fac(), event.str());
        break;
      case RdKafka::Event::EVENT_ERROR:
        log_rdkafka_error("", event.fatal(), RdKafka::err2str(event.err()) + ": " + event.str());
        break;
      default:
        break;
    }
  }
};
SpdlogEvents g_events;

void c_log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  log_rdkafka_line(level, rk ? rd_kafka_name(rk) : "", fac ? fac : "", buf ? buf : "");
}

void c_error_cb(rd_kafka_t* rk, int err, const char* reason, void*) {
  log_rdkafka_error(rk ? rd_kafka_name(rk) : "", err == RD_KAFKA_RESP_ERR__FATAL, reason ? reason : "");
}

}  // namespace

void log_rdkafka_line(int level, const std::string& client, const std::string& facility, const std::string& message) {
  const auto lvl = spdlog_level(level);
  if (client.empty()) {
    spdlog::log(lvl, "kafka {}: {}", facility, message);
  } else {
    spdlog::log(lvl, "kafka [{}] {}: {}", client, facility, message);
  }
}

void set_property(RdKafka::Conf& conf, const std::string& key, const std::string& value) {
  std::string err;
  if (conf.set(key, value, err) != RdKafka::Conf::CONF_OK) {
    throw ConfigError("kafka property '" + key + "': " + err);
  }
}

ConfPtr make_conf(const KafkaConfig& config, const Properties& defaults, const Properties& overrides) {
  ConfPtr conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  set_property(*conf, "bootstrap.servers", config.brokers);
  for (const auto& [k, v] : defaults) set_property(*conf, k, v);
  for (const auto& [k, v] : config.properties) set_property(*conf, k, v);
  for (const auto& [k, v] : overrides) set_property(*conf, k, v);
  std::string err;
  if (conf->set("event_cb", static_cast<RdKafka::EventCb*>(&g_events), err) != RdKafka::Conf::CONF_OK) {
    throw std::runtime_error("kafka event callback: " + err);
  }
  return conf;
}

RdKafkaPtr make_admin_handle(const KafkaConfig& config) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  auto set_c = [&](const std::string& k, const std::string& v) {
    if (rd_kafka_conf_set(conf, k.c_str(), v.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      rd_kafka_conf_destroy(conf);
      throw ConfigError("kafka property '" + k + "': " + err);
    }
  };
  set_c("bootstrap.servers", config.brokers);
  for (const auto& [k, v] : config.properties) set_c(k, v);
  rd_kafka_conf_set_log_cb(conf, c_log_cb);
  rd_kafka_conf_set_error_cb(conf, c_error_cb);
  // rd_kafka_new takes ownership of conf only on success.
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    rd_kafka_conf_destroy(conf);
    throw std::runtime_error(std::string("kafka admin client: ") + err);
  }
  return RdKafkaPtr(rk);
}

}  // namespace leadsync::common
