#include "common/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "common/config_node.h"
#include "common/scoring.h"
#include "common/errors.h"
#include "common/kafka_config.h"

namespace leadsync::common {
namespace config_detail {

thread_local ConfigSchema* t_schema = nullptr;

bool valid_identifier(const std::string& s) {
  if (s.empty() || s.size() > 63) return false;
  if (!(std::islower(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_';
  });
}

void check_identifier(const Node& n, const std::string& s) {
  if (!valid_identifier(s)) {
    n.fail("'" + s + "' is not a valid name (lower-case letters, digits and _, starting with a letter or _, "
           "at most 63 characters)");
  }
}

// A worker's instance id names its two group members (`<id>-main`, `<id>-tiers`): a pod or unit
// name, nothing that needs quoting anywhere.
constexpr const char* kInstanceIdRule = "letters, digits, '-', '_' and '.', at most 200";
bool valid_instance_id(const std::string& s) {
  return s.size() <= 200 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
         });
}
void check_instance_id(const Node& n, const std::string& s) {
  if (!valid_instance_id(s)) n.fail("'" + s + "' is not a valid instance id (" + kInstanceIdRule + ")");
}

}  // namespace config_detail

namespace {

using config_detail::check_identifier;
using config_detail::check_instance_id;
using config_detail::Node;
using config_detail::t_schema;

FieldConfig parse_field(const std::string& name, const Node& n) {
  check_identifier(n, name);
  if (name.starts_with("_")) n.fail("field names starting with '_' are reserved for leadsync's own columns");
  n.expect_map({"type", "required", "normalize", "coerce", "separator", "role"});
  FieldConfig f;
  f.name = name;
  f.type = n.child("type").choice<FieldType>(
      FieldType::kText, {{"text", FieldType::kText}, {"int", FieldType::kInt}, {"float", FieldType::kFloat},
                         {"bool", FieldType::kBool}, {"timestamp", FieldType::kTimestamp},
                         {"date", FieldType::kDate}, {"text_list", FieldType::kTextList},
                         {"json", FieldType::kJson}});
  f.required = n.child("required").boolean(false);
  f.normalize = n.child("normalize").choice<Normalize>(
      Normalize::kNone, {{"none", Normalize::kNone}, {"trim", Normalize::kTrim}, {"lower", Normalize::kLower},
                         {"lower_trim", Normalize::kLowerTrim}});
  if (f.normalize != Normalize::kNone && f.type != FieldType::kText && f.type != FieldType::kTextList) {
    n.child("normalize").fail("normalize applies to text and text_list fields only");
  }
  f.coerce = n.child("coerce").choice<ListCoerce>(
      ListCoerce::kWrapScalar, {{"wrap_scalar", ListCoerce::kWrapScalar}, {"reject", ListCoerce::kReject}});
  if (n.child("coerce").defined() && f.type != FieldType::kTextList) {
    n.child("coerce").fail("coerce applies to text_list fields only");
  }
  f.separator = n.child("separator").str_or(",");
  if (f.separator.empty()) n.child("separator").fail("must not be empty");
  f.role = n.child("role").choice<FieldRole>(
      FieldRole::kSource, {{"source", FieldRole::kSource}, {"write_back", FieldRole::kWriteBack},
                           {"computed", FieldRole::kComputed}, {"rules", FieldRole::kRules}});
  if (f.role == FieldRole::kRules && f.required) n.child("required").fail("a field the rules fill cannot be required");
  return f;
}

EntityConfig parse_entity(const std::string& name, const Node& n) {
  check_identifier(n, name);
  n.expect_map({"table", "key", "match_on", "audit", "deletes", "partial_events", "fields", "scoring", "segments"});
  EntityConfig e;
  e.name = name;
  e.table = n.child("table").str_or(name);
  check_identifier(n.child("table"), e.table);
  e.key = n.child("key").required_str();
  check_identifier(n.child("key"), e.key);
  e.audit = n.child("audit").boolean(false);
  e.partial_events = n.child("partial_events").boolean(false);
  e.deletes = n.child("deletes").choice<DeleteMode>(DeleteMode::kSoft, {{"soft", DeleteMode::kSoft}});
  const auto fields = n.child("fields");
  if (!fields.defined()) fields.fail("is required: an entity needs at least one field");
  fields.each_entry([&](const std::string& fname, const Node& fn) {
    if (fname == e.key) fn.fail("the key '" + e.key + "' is a column of its own; do not list it under fields");
    e.fields.push_back(parse_field(fname, fn));
  });
  e.match_on = n.child("match_on").str_list();
  for (std::size_t i = 0; i < e.match_on.size(); ++i) {
    const auto* f = e.field(e.match_on[i]);
    if (!f) n.child("match_on").fail("'" + e.match_on[i] + "' is not a field of entity '" + name + "'");
    if (f->type != FieldType::kText) {
      n.child("match_on").fail("'" + e.match_on[i] + "' must be a text field to serve as an alternate key");
    }
    if (f->role == FieldRole::kRules) {
      n.child("match_on").fail("'" + e.match_on[i] + "' is filled by the rules; an alternate key comes from the source");
    }
  }
  e.rules = RuleSet::parse(n, e);
  for (const auto& f : e.fields) {
    const bool written = e.rules && (e.rules->score_field() == f.name || e.rules->segment_field() == f.name);
    if (f.role == FieldRole::kRules && !written) {
      fields.child(f.name).child("role").fail("'" + f.name + "' has role rules but neither `scoring` nor `segments` writes it");
    }
  }
  return e;
}

}  // namespace

const char* error_class_name(ErrorClass c) noexcept {
  switch (c) {
    case ErrorClass::kPermanent: return "permanent";
    case ErrorClass::kRetryable: return "retryable";
    case ErrorClass::kInfrastructure: return "infrastructure";
  }
  return "unknown";
}

const char* field_type_name(FieldType t) noexcept {
  switch (t) {
    case FieldType::kText: return "text";
    case FieldType::kInt: return "int";
    case FieldType::kFloat: return "float";
    case FieldType::kBool: return "bool";
    case FieldType::kTimestamp: return "timestamp";
    case FieldType::kDate: return "date";
    case FieldType::kTextList: return "text_list";
    case FieldType::kJson: return "json";
  }
  return "unknown";
}

const char* field_sql_type(FieldType t) noexcept {
  switch (t) {
    case FieldType::kText: return "text";
    case FieldType::kInt: return "bigint";
    case FieldType::kFloat: return "double precision";
    case FieldType::kBool: return "boolean";
    case FieldType::kTimestamp: return "timestamptz";
    case FieldType::kDate: return "date";
    case FieldType::kTextList: return "text[]";
    case FieldType::kJson: return "jsonb";
  }
  return "text";
}

const FieldConfig* EntityConfig::field(std::string_view name) const {
  for (const auto& f : fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

const EntityConfig& Config::entity(const std::string& name) const {
  const auto it = entities.find(name);
  if (it == entities.end()) throw ConfigError("unknown entity '" + name + "'");
  return it->second;
}

const SourceConfig* Config::source(std::string_view name) const {
  for (const auto& s : sources) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  std::size_t i = 0;
  long long value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    value = value * 10 + (text[i] - '0');
    if (value > 1'000'000'000) return std::nullopt;
    ++i;
  }
  if (i == 0) return std::nullopt;
  const auto unit = text.substr(i);
  if (unit == "ms") return std::chrono::milliseconds(value);
  if (unit == "s") return std::chrono::milliseconds(value * 1000);
  if (unit == "m") return std::chrono::milliseconds(value * 60'000);
  if (unit == "h") return std::chrono::milliseconds(value * 3'600'000);
  return std::nullopt;
}

Config parse_config(const std::string& yaml_text, const std::string& origin) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw ConfigError("config error in " + origin + ": invalid YAML at line " + std::to_string(e.mark.line + 1) +
                      ", column " + std::to_string(e.mark.column + 1) + ": " + e.msg);
  }
  const Node top(root, "");
  if (!root.IsMap()) throw ConfigError("config error in " + origin + ": the document must be a mapping");
  top.expect_map({"kafka", "postgres", "worker", "runs", "api", "entities", "sources", "reverse"});

  Config c;
  if (const auto k = top.child("kafka"); k.defined()) {
    k.expect_map({"brokers", "topic", "partitions", "group", "retry", "dlq_topic", "properties", "secrets_env",
                  "allow_unsafe_producer"});
    c.kafka.brokers = k.child("brokers").str_or(c.kafka.brokers);
    c.kafka.topic = k.child("topic").str_or(c.kafka.topic);
    c.kafka.partitions = k.child("partitions").integer(c.kafka.partitions, 1, 10000);
    c.kafka.group = k.child("group").str_or(c.kafka.group);
    if (const auto r = k.child("retry"); r.defined()) {
      r.expect_map({"attempts", "base_ms", "max_ms"});
      c.kafka.retry.attempts = r.child("attempts").integer(c.kafka.retry.attempts, 0, 20);
      c.kafka.retry.base_ms = r.child("base_ms").integer(c.kafka.retry.base_ms, 1, 86'400'000);
      c.kafka.retry.max_ms = r.child("max_ms").integer(c.kafka.retry.max_ms, 1, 86'400'000);
      if (c.kafka.retry.max_ms < c.kafka.retry.base_ms) r.child("max_ms").fail("must be >= base_ms");
    }
    c.kafka.dlq_topic = k.child("dlq_topic").str_or(c.kafka.dlq_topic);
    if (const auto p = k.child("properties"); p.defined()) {
      p.each_entry([&](const std::string& key, const Node& v) { c.kafka.properties[key] = v.str(); });
    }
    if (const auto e = k.child("secrets_env"); e.defined()) {
      e.each_entry([&](const std::string& key, const Node& v) { c.kafka.secrets_env[key] = v.required_str(); });
    }
    c.kafka.allow_unsafe_producer = k.child("allow_unsafe_producer").boolean(false);
    validate_kafka_properties(c.kafka);
  }
  if (const auto p = top.child("postgres"); p.defined()) {
    p.expect_map({"url", "schema", "statement_timeout_ms", "lock_timeout_ms", "idle_in_transaction_timeout_ms"});
    c.postgres.url = p.child("url").str_or(c.postgres.url);
    auto& pg = c.postgres;
    pg.statement_timeout_ms = p.child("statement_timeout_ms").integer(pg.statement_timeout_ms, 0, 86'400'000);
    pg.lock_timeout_ms = p.child("lock_timeout_ms").integer(pg.lock_timeout_ms, 0, 86'400'000);
    pg.idle_in_transaction_timeout_ms =
        p.child("idle_in_transaction_timeout_ms").integer(pg.idle_in_transaction_timeout_ms, 0, 86'400'000);
    c.postgres.schema = p.child("schema").str_or(c.postgres.schema);
    check_identifier(p.child("schema"), c.postgres.schema);
    if (c.postgres.schema == "leadsync") p.child("schema").fail("schema 'leadsync' is reserved for leadsync's own tables");
  }
  if (const auto w = top.child("worker"); w.defined()) {
    w.expect_map({"max_batch", "max_wait_ms", "connections", "instance_id"});
    c.worker.max_batch = w.child("max_batch").integer(c.worker.max_batch, 1, 100'000);
    c.worker.max_wait_ms = w.child("max_wait_ms").integer(c.worker.max_wait_ms, 0, 60'000);
    c.worker.connections = w.child("connections").integer(c.worker.connections, 1, 16);
    c.worker.instance_id = w.child("instance_id").str_or("");
    check_instance_id(w.child("instance_id"), c.worker.instance_id);
  }
  if (const auto r = top.child("runs"); r.defined()) {
    r.expect_map({"heartbeat_interval", "checkpoint_interval"});
    if (const auto h = r.child("heartbeat_interval"); h.defined()) {
      const auto d = parse_duration(h.str());
      if (!d || d->count() < 100) h.fail("expected a duration of at least 100ms, like 2s or 500ms, got '" + h.str() + "'");
      c.runs.heartbeat_interval = *d;
    }
    if (const auto k = r.child("checkpoint_interval"); k.defined()) {
      const auto d = parse_duration(k.str());
      if (!d || d->count() < 100) k.fail("expected a duration of at least 100ms, like 10s or 1s, got '" + k.str() + "'");
      c.runs.checkpoint_interval = *d;
    }
  }
  if (const auto a = top.child("api"); a.defined()) {
    a.expect_map({"address", "token_env"});
    c.api.address = a.child("address").str_or(c.api.address);
    c.api.token_env = a.child("token_env").str_or(c.api.token_env);
    if (c.api.token_env.empty()) a.child("token_env").fail("must name an environment variable");
  }
  const auto entities = top.child("entities");
  if (!entities.defined()) entities.fail("is required: define at least one entity");
  std::set<std::string> tables;
  entities.each_entry([&](const std::string& name, const Node& n) {
    auto e = parse_entity(name, n);
    if (!tables.insert(e.table).second) n.child("table").fail("table '" + e.table + "' is used by two entities");
    c.entities.emplace(name, std::move(e));
  });
  if (const auto sources = top.child("sources"); sources.defined()) {
    std::set<std::string> names;
    sources.each_item([&](const Node& n) {
      auto s = config_detail::parse_source(n, c.entities);
      if (!names.insert(s.name).second) n.child("name").fail("source name '" + s.name + "' is used twice");
      c.sources.push_back(std::move(s));
    });
  }
  config_detail::parse_reverse(top.child("reverse"), c);
  return c;
}

ConfigSchema accepted_config_keys(const std::string& yaml_text) {
  ConfigSchema schema;
  struct Reset {
    ~Reset() { t_schema = nullptr; }
  } reset;
  t_schema = &schema;
  parse_config(yaml_text, "config");
  return schema;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read config file '" + path + "'");
  std::stringstream buffer;
  buffer << in.rdbuf();
  Config c = parse_config(buffer.str(), path);
  config_detail::resolve_source_urls(c.sources, std::filesystem::absolute(path).parent_path());
  apply_kafka_environment(c.kafka);  // LEADSYNC_KAFKA_BROKERS, SASL/SSL secrets
  if (const char* v = std::getenv("LEADSYNC_PG_URL"); v && *v) c.postgres.url = v;
  if (const char* v = std::getenv("LEADSYNC_WORKER_INSTANCE_ID"); v && *v) {
    if (!config_detail::valid_instance_id(v)) {
      throw ConfigError(std::string("LEADSYNC_WORKER_INSTANCE_ID: not a valid instance id (") +
                        config_detail::kInstanceIdRule + ")");
    }
    c.worker.instance_id = v;
  }
  return c;
}

}  // namespace leadsync::common
