// Checks and environment overrides for the `kafka:` section (issue 7 items 18, 19): a property
// librdkafka rejects, one that weakens the idempotent acks=all producer, one that leadsync manages
// itself, or a secret written into the YAML is a configuration error naming its key; SASL/SSL
// secrets come from the environment.
#pragma once

#include <string>
#include <string_view>

#include "common/config.h"

namespace leadsync::common {

// Validates config.properties; throws ConfigError("config error at kafka.properties.<key>: …").
// Secret values are never quoted in the message.
void validate_kafka_properties(const KafkaConfig& config);

// The librdkafka properties that carry secrets, and the environment variable that sets each.
struct KafkaSecretVariable {
  const char* property;
  const char* variable;
};
inline constexpr KafkaSecretVariable kKafkaSecretVariables[] = {
    {"sasl.username", "LEADSYNC_KAFKA_SASL_USERNAME"},
    {"sasl.password", "LEADSYNC_KAFKA_SASL_PASSWORD"},
    {"sasl.oauthbearer.client.secret", "LEADSYNC_KAFKA_SASL_OAUTHBEARER_CLIENT_SECRET"},
    {"ssl.key.password", "LEADSYNC_KAFKA_SSL_KEY_PASSWORD"},
    {"ssl.keystore.password", "LEADSYNC_KAFKA_SSL_KEYSTORE_PASSWORD"},
    {"ssl.key.pem", "LEADSYNC_KAFKA_SSL_KEY_PEM"},
};
// True for a property whose value is a secret (and so may not sit in the YAML).
bool is_kafka_secret(std::string_view property);

// Sets the secret properties from the environment: first `secrets_env` (property -> variable name,
// a missing variable is an error naming kafka.secrets_env.<property>), then the fixed
// LEADSYNC_KAFKA_* variables above, which win when set. Then LEADSYNC_KAFKA_BROKERS.
void apply_kafka_environment(KafkaConfig& config);

}  // namespace leadsync::common
