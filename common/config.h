// leadsync configuration: one YAML file (interfaces.md "Configuration") plus environment overrides.
// Every key is validated at start-up; an error names the key path, the value and what was expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/reverse_config.h"
#include "common/source_config.h"

namespace leadsync::common {

enum class FieldType { kText, kInt, kFloat, kBool, kTimestamp, kDate, kTextList, kJson };
enum class Normalize { kNone, kTrim, kLower, kLowerTrim };
enum class ListCoerce { kWrapScalar, kReject };
enum class DeleteMode { kSoft };
// Where a field's value comes from: a source column (the default); leadsync writing back what a
// target assigned (the CRM id of a record created from PostgreSQL); or computed in PostgreSQL
// (enrichment, an application); or filled by the entity's scoring/segment rules in the producer
// (common/scoring.h), before the checksum. No source column may map onto the last three; the apply
// keeps the value of write-back and computed fields, and writes rules fields like source fields.
enum class FieldRole { kSource, kWriteBack, kComputed, kRules };

const char* field_type_name(FieldType t) noexcept;
// The PostgreSQL column type that stores a field of this type.
const char* field_sql_type(FieldType t) noexcept;

struct FieldConfig {
  std::string name;
  FieldType type = FieldType::kText;
  bool required = false;
  Normalize normalize = Normalize::kNone;
  ListCoerce coerce = ListCoerce::kWrapScalar;  // text_list only: what a scalar becomes
  std::string separator = ",";                  // text_list only: splits a spreadsheet cell
  FieldRole role = FieldRole::kSource;
};

class RuleSet;

struct EntityConfig {
  std::string name;
  std::string table;
  std::string key;  // key column (text)
  std::vector<std::string> match_on;
  bool audit = false;
  DeleteMode deletes = DeleteMode::kSoft;
  // Accepts partial events (only some fields). Such an entity keeps a version per field
  // (_field_versions) and guards each field on its own (design.md §4).
  bool partial_events = false;
  std::vector<FieldConfig> fields;  // in declaration order
  std::shared_ptr<const RuleSet> rules;  // scoring and segments; null when the entity has neither

  const FieldConfig* field(std::string_view name) const;
};

struct RetryConfig {
  int attempts = 3;
  int base_ms = 1000;
  int max_ms = 10000;
};

struct KafkaConfig {
  std::string brokers = "127.0.0.1:9092";
  std::string topic = "leadsync.changes";
  int partitions = 12;
  std::string group = "leadsync-workers";
  RetryConfig retry;
  std::string dlq_topic = "leadsync.changes.dlq";
  std::map<std::string, std::string> properties;  // passed to librdkafka (common/kafka_config.h checks them)
  // librdkafka property -> environment variable holding its secret value (sasl.password: KAFKA_PW).
  std::map<std::string, std::string> secrets_env;
  // `properties` may switch off enable.idempotence or acks=all only when this is true.
  bool allow_unsafe_producer = false;

  std::string retry_topic(int tier) const { return topic + ".retry." + std::to_string(tier); }
};

struct PostgresConfig {
  std::string url = "postgresql://localhost/leadsync";
  std::string schema = "public";
  // Session limits on the connections that apply changes (0 = off): a statement waiting on a row
  // lock fails with 55P03, a runaway one with 57014 (both retryable), an abandoned transaction ends.
  int statement_timeout_ms = 60'000;
  int lock_timeout_ms = 10'000;
  int idle_in_transaction_timeout_ms = 60'000;
};

struct WorkerConfig {
  int max_batch = 5000;       // events applied in one transaction
  int max_wait_ms = 20;       // how long a poll waits to fill a batch after its first event
  // PostgreSQL connections a worker applies each batch over at once, each taking whole partitions
  // of it (workers/lanes.h).
  int connections = 2;
  // Static group membership (Kafka's group.instance.id): a worker restarted under the same id takes
  // back its partitions without a rebalance of the group. Empty: a new member at every start.
  std::string instance_id;
};

// Sync runs (design.md §6): a runner heartbeats this often; 3 missed heartbeats make its run stale.
struct RunsConfig {
  std::chrono::milliseconds heartbeat_interval{2000};
  // The least time between two checkpoints of a run (producers/sync_run.cc, save_checkpoint).
  std::chrono::milliseconds checkpoint_interval{10000};
};

// The producer's HTTP API and status page (producers/api). No address: not served.
struct ApiConfig {
  std::string address;                           // HOST:PORT
  std::string token_env = "LEADSYNC_API_TOKEN";  // names the variable holding the bearer token
};

struct Config {
  KafkaConfig kafka;
  PostgresConfig postgres;
  WorkerConfig worker;
  RunsConfig runs;
  ApiConfig api;
  std::map<std::string, EntityConfig> entities;
  std::vector<SourceConfig> sources;
  ReverseConfig reverse;  // PostgreSQL -> CRM (design.md §9)

  const EntityConfig& entity(const std::string& name) const;  // throws ConfigError
  const SourceConfig* source(std::string_view name) const;
};

// Parses and validates YAML text. `origin` names the file in error messages.
Config parse_config(const std::string& yaml_text, const std::string& origin = "config");
// Reads the file, parses it, then applies the environment: LEADSYNC_KAFKA_BROKERS, the Kafka
// SASL/SSL secrets (common/kafka_config.h: LEADSYNC_KAFKA_SASL_PASSWORD…, kafka.secrets_env) and
// LEADSYNC_PG_URL. Relative source paths are resolved against the config file's directory.
Config load_config(const std::string& path);

// What the loader accepts, recorded while it parses `yaml_text` (which must be valid): `keys` holds the
// schema path of every key each visited mapping allows (list items as `[]`, user-named entries such as
// entity and field names as `<name>`, e.g. `entities.<name>.fields.<name>.type`), `present` the paths
// the text actually sets, `values` the allowed values of each enumerated key. Sections absent from the
// text are not visited. docs/configuration.md is checked against it (tests/unit/docs_config_test.cc).
struct ConfigSchema {
  std::set<std::string> keys;
  std::set<std::string> present;
  std::map<std::string, std::set<std::string>> values;
  // Schema paths that the loader re-roots (a nested condition → `<condition>`).
  std::map<std::string, std::string> aliases;
};
ConfigSchema accepted_config_keys(const std::string& yaml_text);

// "60s", "5m", "250ms", "1h" -> milliseconds; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace leadsync::common
