// leadsync configuration: one YAML file (interfaces.md "Configuration") plus environment overrides.
// Every key is validated at start-up; an error names the key path, the value and what was expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "common/source_config.h"

namespace leadsync::common {

enum class FieldType { kText, kInt, kFloat, kBool, kTimestamp, kDate, kTextList, kJson };
enum class Normalize { kNone, kTrim, kLower, kLowerTrim };
enum class ListCoerce { kWrapScalar, kReject };
enum class DeleteMode { kSoft };

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
};

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
  std::map<std::string, std::string> properties;

  std::string retry_topic(int tier) const { return topic + ".retry." + std::to_string(tier); }
};

struct PostgresConfig {
  std::string url = "postgresql://localhost/leadsync";
  std::string schema = "public";
};

struct WorkerConfig {
  int max_batch = 5000;       // events applied in one transaction
  int max_wait_ms = 20;       // how long a poll waits to fill a batch after its first event
};

struct Config {
  KafkaConfig kafka;
  PostgresConfig postgres;
  WorkerConfig worker;
  std::map<std::string, EntityConfig> entities;
  std::vector<SourceConfig> sources;

  const EntityConfig& entity(const std::string& name) const;  // throws ConfigError
  const SourceConfig* source(std::string_view name) const;
};

// Parses and validates YAML text. `origin` names the file in error messages.
Config parse_config(const std::string& yaml_text, const std::string& origin = "config");
// Reads the file, parses it, then applies LEADSYNC_KAFKA_BROKERS and LEADSYNC_PG_URL from the
// environment. Relative source paths are resolved against the config file's directory.
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
};
ConfigSchema accepted_config_keys(const std::string& yaml_text);

// "60s", "5m", "250ms", "1h" -> milliseconds; nullopt when malformed.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

}  // namespace leadsync::common
