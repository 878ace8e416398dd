#include "common/kafka_config.h"

#include <librdkafka/rdkafka.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "common/errors.h"

namespace leadsync::common {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw ConfigError("config error at kafka." + path + ": " + what);
}

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};

// Properties leadsync sets itself; a user value would break a guarantee or move the client.
struct Managed {
  const char* property;
  const char* why;
};
constexpr Managed kManaged[] = {
    {"bootstrap.servers", "set kafka.brokers (or LEADSYNC_KAFKA_BROKERS) instead"},
    {"group.id", "set kafka.group instead"},
    {"enable.auto.offset.store",
     "leadsync stores an offset only after the database commit; storing it earlier loses events"},
    {"transactional.id", "leadsync's producer is idempotent, not transactional"},
};

}  // namespace

bool is_kafka_secret(std::string_view property) {
  return std::any_of(std::begin(kKafkaSecretVariables), std::end(kKafkaSecretVariables),
                     [&](const KafkaSecretVariable& s) {
                       return property == s.property && property != "sasl.username";
                     });
}

void validate_kafka_properties(const KafkaConfig& config) {
  std::unique_ptr<rd_kafka_conf_t, ConfDeleter> conf(rd_kafka_conf_new());
  for (const auto& [key, value] : config.properties) {
    const auto path = "properties." + key;
    for (const auto& m : kManaged) {
      if (key == m.property) fail(path, std::string("leadsync manages this property: ") + m.why);
    }
    if (is_kafka_secret(key)) {
      std::string variable;
      for (const auto& s : kKafkaSecretVariables) {
        if (key == s.property) variable = s.variable;
      }
      fail(path, "secrets never sit in the configuration file: set the environment variable " + variable +
                     " or name a variable under kafka.secrets_env");
    }
    char err[512] = {0};
    if (rd_kafka_conf_set(conf.get(), key.c_str(), value.c_str(), err, sizeof err) != RD_KAFKA_CONF_OK) {
      fail(path, "librdkafka rejects '" + value + "': " + err);
    }
    if (config.allow_unsafe_producer) continue;
    const bool weak_acks = key == "acks" || key == "request.required.acks" ? value != "all" && value != "-1" : false;
    const bool no_idempotence = key == "enable.idempotence" && value != "true";
    if (weak_acks || no_idempotence) {
      fail(path, "'" + value + "' switches off the idempotent acks=all producer that keeps every change "
                 "event exactly once and in order; set kafka.allow_unsafe_producer: true if this is meant");
    }
  }
}

void apply_kafka_environment(KafkaConfig& config) {
  for (const auto& [property, variable] : config.secrets_env) {
    const char* value = std::getenv(variable.c_str());
    if (!value || !*value) fail("secrets_env." + property, "environment variable " + variable + " is not set");
    config.properties[property] = value;
  }
  for (const auto& s : kKafkaSecretVariables) {
    if (const char* v = std::getenv(s.variable); v && *v) config.properties[s.property] = v;
  }
  if (const char* v = std::getenv("LEADSYNC_KAFKA_BROKERS"); v && *v) config.brokers = v;
}

}  // namespace leadsync::common
