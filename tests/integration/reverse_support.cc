#include "tests/integration/reverse_support.h"

#include "common/kafka_admin.h"
#include "producers/pg_changes/outbox_capture.h"
#include "workers/targets/twenty_target.h"
#include "workers/worker.h"

namespace leadsync::testing {

common::Config reverse_test_config(const std::string& tag, const std::string& crm_url,
                                   const std::map<std::string, common::FieldPriority>& priority) {
  auto config = isolated_example_config(tag);
  auto& lead = config.entities.at("lead");
  common::FieldConfig id;
  id.name = "twenty_id";
  id.role = common::FieldRole::kWriteBack;
  lead.fields.push_back(id);
  auto crm = config.sources.front();
  crm.name = "crm-" + tag;
  config.sources.push_back(crm);
  auto& r = config.reverse;
  r.enabled = true;
  r.source = "app-" + tag;
  r.entity = "lead";
  r.topic = "t." + tag + ".reverse";
  r.dlq_topic = r.topic + ".dlq";
  r.group = "g." + tag + ".reverse";
  r.poll_interval = std::chrono::milliseconds(50);
  r.crm_sources = {crm.name};
  r.fields = {{"first_name", "name.firstName"},
              {"last_name", "name.lastName"},
              {"email", "emails.primaryEmail"},
              {"status", "status"},
              {"score", "score"}};
  r.id_field = "twenty_id";
  r.priority = priority;
  r.twenty.url = crm_url;
  r.twenty.requests_per_minute = 100'000;
  return config;
}

// A lead entity every field of which Twenty holds (so the CRM's full image owns them all), the CRM
// source `crm-<tag>` of kind twenty keyed by the Twenty id, and the reverse direction of the same
// entity writing the id of a person created from PostgreSQL back into twenty_id.
common::Config roundtrip_config(const std::string& tag, const std::string& crm_url, const std::string& priority_yaml,
                                const std::string& webhook_secret_env) {
  const std::string webhook = webhook_secret_env.empty()
                                  ? std::string()
                                  : ", webhook: {address: 127.0.0.1:0, secret_env: " + webhook_secret_env + ", queue: 10000}";
  const std::string yaml = R"(
kafka: {brokers: 127.0.0.1:9092, topic: t.)" + tag + R"(, partitions: 3, group: g.)" + tag + R"(, dlq_topic: t.)" + tag + R"(.dlq}
postgres: {url: postgresql://localhost/x, schema: t_)" + tag + R"(}
entities:
  lead:
    table: leads
    key: lead_id
    audit: true
    deletes: soft
    fields:
      first_name: {type: text}
      last_name:  {type: text}
      email:      {type: text, normalize: lower_trim}
      status:     {type: text}
      score:      {type: int}
      twenty_id:  {type: text, role: write_back}
sources:
  - name: crm-)" + tag + R"(
    kind: twenty
    entity: lead
    url: )" + crm_url + R"(
    key_column: id
    columns: {id: lead_id, name.firstName: first_name, name.lastName: last_name, emails.primaryEmail: email,
              status: status, score: score}
    schedule: 1h
    http: {rate_limit: 6000/min}
    twenty: {api_key_env: TWENTY_API_KEY, page_size: 200)" + webhook + R"(}
reverse:
  source: app-)" + tag + R"(
  entity: lead
  topic: t.)" + tag + R"(.reverse
  group: g.)" + tag + R"(.reverse
  poll_interval: 50ms
  crm_sources: [crm-)" + tag + R"(]
  fields: {first_name: name.firstName, last_name: name.lastName, email: emails.primaryEmail, status: status,
           score: score}
  id_field: twenty_id
  priority: )" + priority_yaml + R"(
  twenty: {url: )" + crm_url + R"(, requests_per_minute: 100000}
)";
  auto config = common::parse_config(yaml);
  const auto example = isolated_example_config(tag);  // the local cluster's addresses
  config.kafka.brokers = example.kafka.brokers;
  config.kafka.properties = example.kafka.properties;
  config.postgres.url = example.postgres.url;
  return config;
}

ReverseEnvironment::ReverseEnvironment(const common::Config& config) : config_(config), main_(config) {
  const auto kafka = common::reverse_kafka_config(config_);
  common::create_topics(kafka, common::leadsync_topics(kafka));
}

ReverseEnvironment::~ReverseEnvironment() {
  try {
    const auto kafka = common::reverse_kafka_config(config_);
    std::vector<std::string> topics;
    for (const auto& t : common::leadsync_topics(kafka)) topics.push_back(t.name);
    common::delete_topics(kafka, topics);
    auto conn = connect(config_);
    pqxx::work tx(*conn);
    tx.exec_params("DELETE FROM leadsync.outbox WHERE relation = $1",
                   config_.postgres.schema + "." + config_.entity("lead").table);
    tx.commit();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cleanup failed: %s\n", e.what());
  }
}

std::string lead_table(const common::Config& config) {
  return common::quote_ident(config.postgres.schema) + "." + common::quote_ident(config.entity("lead").table);
}

int64_t outbox_rows(pqxx::connection& conn, const common::Config& config) {
  pqxx::read_transaction tx(conn);
  return tx
      .exec_params1("SELECT count(*) FROM leadsync.outbox WHERE relation = $1",
                    config.postgres.schema + "." + config.entity("lead").table)[0]
      .as<int64_t>();
}

common::ChangeEvent crm_event(const common::Config& config, const std::string& twenty_id, int64_t updated_micros,
                              const std::map<std::string, common::Value>& fields) {
  // A full image: every source field, NULL unless given.
  auto all = fields;
  for (const auto& f : config.entity("lead").fields) {
    if (f.role == common::FieldRole::kSource && !all.count(f.name)) {
      all[f.name] = f.type == common::FieldType::kTextList ? list({}) : null();
    }
  }
  auto e = change_event(config.reverse.crm_sources.front(), "lead", twenty_id, v1::OP_UPSERT, updated_micros, all, "");
  e.set_origin(config.reverse.crm_origin);
  return e;
}

ReversePipeline::ReversePipeline(const common::Config& config)
    : config_(config), sink_config_(common::reverse_worker_config(config)) {
  capture_ = std::thread([this] {
    try {
      producers::OutboxCapture capture(config_, capture_telemetry_.registry());
      capture.run(stop_, capture_telemetry_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "capture thread failed: " << e.what();
    }
  });
  sink_ = std::thread([this] {
    try {
      workers::Worker worker(sink_config_, sink_telemetry_,
                             [this](workers::WorkerMetrics& metrics, prometheus::Registry& registry) {
                               return std::make_unique<workers::TwentyTarget>(config_, metrics, registry);
                             });
      worker.run(stop_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "sink thread failed: " << e.what();
    }
  });
}

ReversePipeline::~ReversePipeline() { stop(); }

void ReversePipeline::stop() {
  stop_.store(true);
  if (capture_.joinable()) capture_.join();
  if (sink_.joinable()) sink_.join();
}

}  // namespace leadsync::testing
