// Parses the `reverse:` section (common/reverse_config.h) and checks field roles across sources.
#include "common/reverse_config.h"

#include <set>

#include "common/config.h"
#include "common/config_node.h"

namespace leadsync::common {

const char* field_priority_name(FieldPriority p) noexcept {
  switch (p) {
    case FieldPriority::kLastWriteWins: return "last_write_wins";
    case FieldPriority::kCrm: return "crm";
    case FieldPriority::kPostgres: return "postgres";
  }
  return "unknown";
}

KafkaConfig reverse_kafka_config(const Config& config) {
  auto k = config.kafka;
  k.topic = config.reverse.topic;
  k.dlq_topic = config.reverse.dlq_topic;
  k.group = config.reverse.group;
  return k;
}

Config reverse_worker_config(const Config& config) {
  auto c = config;
  c.kafka = reverse_kafka_config(config);
  return c;
}

namespace config_detail {
namespace {

std::chrono::milliseconds duration_or(const Node& n, std::chrono::milliseconds fallback) {
  if (!n.defined()) return fallback;
  const auto d = parse_duration(n.str());
  if (!d || d->count() <= 0) n.fail("expected a positive duration like 200ms or 30s, got '" + n.str() + "'");
  return *d;
}

TwentyTargetConfig parse_twenty(const Node& n) {
  TwentyTargetConfig t;
  if (!n.defined()) n.fail("is required: where the CRM's API is");
  n.expect_map({"url", "api_key_env", "object", "batch_size", "requests_per_minute", "timeout", "attempts"});
  t.url = n.child("url").required_str();
  if (!t.url.starts_with("http://") && !t.url.starts_with("https://")) n.child("url").fail("expected an http(s) URL");
  if (!t.url.ends_with("/")) t.url += "/";
  t.api_key_env = n.child("api_key_env").str_or(t.api_key_env);
  if (t.api_key_env.empty()) n.child("api_key_env").fail("must name an environment variable");
  t.object = n.child("object").str_or(t.object);
  check_identifier(n.child("object"), t.object);
  t.batch_size = n.child("batch_size").integer(t.batch_size, 1, 60);
  t.requests_per_minute = n.child("requests_per_minute").integer(t.requests_per_minute, 1, 1'000'000);
  t.timeout = duration_or(n.child("timeout"), t.timeout);
  t.attempts = n.child("attempts").integer(t.attempts, 1, 20);
  return t;
}

void check_roles(const Config& c) {
  for (const auto& s : c.sources) {
    const auto& entity = c.entity(s.entity);
    for (const auto& [column, field] : s.columns) {
      const auto* f = entity.field(field);
      if (f && f->role != FieldRole::kSource) {
        throw ConfigError("config error at sources." + s.name + ".columns: '" + column + "' maps onto '" + field +
                          "', which is declared role: " +
                          (f->role == FieldRole::kWriteBack ? "write_back"
                           : f->role == FieldRole::kRules   ? "rules"
                                                            : "computed") +
                          " (leadsync, its rules or the application write it, no source column may)");
      }
    }
  }
}

}  // namespace

void parse_reverse(const Node& n, Config& c) {
  check_roles(c);
  if (!n.defined()) return;
  n.expect_map({"source", "entity", "topic", "dlq_topic", "group", "poll_interval", "capture_batch", "crm_origin",
                "crm_sources", "fields", "id_field", "priority", "twenty"});
  auto& r = c.reverse;
  r.enabled = true;
  r.source = n.child("source").str_or(r.source);
  if (!valid_source_name(r.source)) n.child("source").fail("'" + r.source + "' is not a valid source name");
  r.entity = n.child("entity").required_str();
  const auto it = c.entities.find(r.entity);
  if (it == c.entities.end()) n.child("entity").fail("unknown entity '" + r.entity + "'");
  const auto& entity = it->second;
  r.topic = n.child("topic").str_or(r.topic);
  r.dlq_topic = n.child("dlq_topic").str_or(r.topic + ".dlq");
  r.group = n.child("group").str_or(r.group);
  if (r.topic == c.kafka.topic) n.child("topic").fail("must differ from kafka.topic: the reverse direction has its own");
  if (r.group == c.kafka.group) n.child("group").fail("must differ from kafka.group");
  r.poll_interval = duration_or(n.child("poll_interval"), r.poll_interval);
  r.capture_batch = n.child("capture_batch").integer(r.capture_batch, 1, 100'000);
  r.crm_origin = n.child("crm_origin").str_or(r.crm_origin);
  if (r.crm_origin.empty() || r.crm_origin == "postgres") n.child("crm_origin").fail("must name the CRM, not postgres");
  r.crm_sources = n.child("crm_sources").str_list();
  for (const auto& s : r.crm_sources) {
    const auto* source = c.source(s);
    if (!source) n.child("crm_sources").fail("unknown source '" + s + "'");
    if (source->entity != r.entity) n.child("crm_sources").fail("source '" + s + "' feeds another entity");
  }
  const auto fields = n.child("fields");
  if (!fields.defined()) fields.fail("is required: which entity fields go to which CRM fields");
  std::set<std::string> paths;
  fields.each_entry([&](const std::string& field, const Node& v) {
    if (!entity.field(field)) v.fail("'" + field + "' is not a field of entity '" + r.entity + "'");
    const auto path = v.required_str();
    if (!paths.insert(path).second) v.fail("CRM field '" + path + "' is mapped twice");
    r.fields.emplace_back(field, path);
  });
  r.id_field = n.child("id_field").required_str();
  const auto* id = entity.field(r.id_field);
  if (!id) n.child("id_field").fail("'" + r.id_field + "' is not a field of entity '" + r.entity + "'");
  if (id->role != FieldRole::kWriteBack || id->type != FieldType::kText) {
    n.child("id_field").fail("'" + r.id_field + "' must be a text field declared role: write_back");
  }
  for (const auto& [field, path] : r.fields) {
    if (field == r.id_field) fields.child(field).fail("the id field is not sent as a CRM field");
  }
  if (const auto p = n.child("priority"); p.defined()) {
    p.each_entry([&](const std::string& field, const Node& v) {
      if (!entity.field(field)) v.fail("'" + field + "' is not a field of entity '" + r.entity + "'");
      r.priority[field] = v.choice<FieldPriority>(
          FieldPriority::kLastWriteWins, {{"last_write_wins", FieldPriority::kLastWriteWins},
                                          {"crm", FieldPriority::kCrm},
                                          {"postgres", FieldPriority::kPostgres}});
    });
  }
  r.twenty = parse_twenty(n.child("twenty"));
}

}  // namespace config_detail
}  // namespace leadsync::common
