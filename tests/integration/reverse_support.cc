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
