// The shared plumbing of leadsync's Kafka clients: configuration objects built in one order
// (bootstrap servers, leadsync's defaults, the user's `kafka.properties`, the caller's overrides),
// RAII owners for librdkafka's C handles, and librdkafka's own log lines routed through spdlog so
// that they share the process's log format instead of appearing raw (`%4|…|GETPID|…`) on stderr.
#pragma once

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafkacpp.h>

#include <map>
#include <memory>
#include <string>

#include "common/config.h"

namespace leadsync::common {

using ConfPtr = std::unique_ptr<RdKafka::Conf>;
using Properties = std::map<std::string, std::string>;

// Sets one property; throws ConfigError naming the property when librdkafka refuses it.
void set_property(RdKafka::Conf& conf, const std::string& key, const std::string& value);

// A global configuration for a C++ client, with the log and error callbacks set.
ConfPtr make_conf(const KafkaConfig& config, const Properties& defaults, const Properties& overrides);

// Writes one librdkafka log line (syslog severity `level`) to spdlog. Exposed for tests.
void log_rdkafka_line(int level, const std::string& client, const std::string& facility, const std::string& message);

// C handles, each owned from the line it is created.
struct RdKafkaDeleter {
  void operator()(rd_kafka_t* p) const { rd_kafka_destroy(p); }
};
struct QueueDeleter {
  void operator()(rd_kafka_queue_t* p) const { rd_kafka_queue_destroy(p); }
};
struct EventDeleter {
  void operator()(rd_kafka_event_t* p) const { rd_kafka_event_destroy(p); }
};
struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* p) const { rd_kafka_AdminOptions_destroy(p); }
};
using RdKafkaPtr = std::unique_ptr<rd_kafka_t, RdKafkaDeleter>;
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;

// A C handle for admin requests, with the same properties and log routing as the C++ clients.
RdKafkaPtr make_admin_handle(const KafkaConfig& config);

}  // namespace leadsync::common
