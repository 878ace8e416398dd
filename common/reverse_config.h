// The `reverse:` part of the configuration (design.md §9, issue 9): PostgreSQL changes made by
// applications travel to the CRM (Twenty). Which entity's table is captured, the topics and the
// consumer group of that direction, how entity fields map onto the CRM's fields, which field holds
// the CRM's id once leadsync has created the record there, and who wins a conflicting field.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace leadsync::common {

// Who decides a field that both sides changed: the newer source version (the default), or always
// one side, whatever the versions say.
enum class FieldPriority { kLastWriteWins, kCrm, kPostgres };
const char* field_priority_name(FieldPriority p) noexcept;

// The CRM end of the reverse direction: Twenty's REST API.
struct TwentyTargetConfig {
  std::string url;                               // base, e.g. https://crm.example.com/rest/
  std::string api_key_env = "TWENTY_API_KEY";    // names the variable holding the API key
  std::string object = "people";                 // the collection records are written to
  int batch_size = 60;                           // records per POST /rest/batch/<object> (Twenty: <= 60)
  int requests_per_minute = 100;                 // Twenty's limit is about 100 requests/min
  std::chrono::milliseconds timeout{30'000};     // one request
  int attempts = 5;                              // per request, 429/5xx retried with backoff
};

struct ReverseConfig {
  bool enabled = false;  // the section is present
  // Names the captured changes: ChangeEvent.source, and _source of rows that applications insert.
  std::string source = "postgres";
  std::string entity;  // the entity whose table is captured (one per deployment)
  std::string topic = "leadsync.reverse";  // retry tiers: <topic>.retry.N
  std::string dlq_topic;                   // default <topic>.dlq
  std::string group = "leadsync-reverse";
  std::chrono::milliseconds poll_interval{200};  // how often the capture reads the outbox when idle
  int capture_batch = 1000;                      // outbox rows per read
  // ChangeEvent.origin of the events that came from the CRM (what its inbound adapter stamps), and
  // the inbound sources whose record keys are CRM ids.
  std::string crm_origin = "twenty";
  std::vector<std::string> crm_sources;
  // Entity field -> CRM field path (name.firstName, emails.primaryEmail), in declaration order.
  std::vector<std::pair<std::string, std::string>> fields;
  // The write-back field (role: write_back) that holds the CRM id of a record created from PostgreSQL.
  std::string id_field;
  std::map<std::string, FieldPriority> priority;  // fields absent: last-write-wins
  TwentyTargetConfig twenty;

  std::string retry_topic(int tier) const { return topic + ".retry." + std::to_string(tier); }
  FieldPriority priority_of(const std::string& field) const {
    const auto it = priority.find(field);
    return it == priority.end() ? FieldPriority::kLastWriteWins : it->second;
  }
};

struct Config;
struct KafkaConfig;
// The Kafka settings of the reverse direction: kafka: with reverse's topic, DLQ and group, so that
// its retry tiers are <reverse.topic>.retry.N and the worker's consume loop and forwarder serve it.
KafkaConfig reverse_kafka_config(const Config& config);
// `config` with kafka: replaced by reverse_kafka_config(): what the CRM sink worker runs on.
Config reverse_worker_config(const Config& config);

namespace config_detail {
class Node;
// Parses `reverse:` (absent: disabled) against the entities, and checks every source: none may map
// a column onto a write-back or computed field (leadsync or the application writes those).
void parse_reverse(const Node& n, Config& config);
}  // namespace config_detail

}  // namespace leadsync::common
