#include "producers/twenty/webhook_receiver.h"

#include <httplib.h>
#include <prometheus/family.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "common/errors.h"
#include "common/kafka_producer.h"
#include "common/mapping.h"
#include "common/metric_names.h"
#include "common/pg.h"
#include "common/redact.h"
#include "producers/mapper.h"
#include "producers/twenty/twenty_record.h"

namespace leadsync::producers {
namespace {

constexpr std::size_t kBatch = 500;

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const common::TwentySettings& twenty_settings(const common::SourceConfig& source) {
  const auto* t = std::get_if<common::TwentySettings>(&source.settings);
  if (!t || !t->webhook_enabled) throw common::ConfigError("source " + source.name + " has no twenty.webhook section");
  return *t;
}

std::string secret_of(const common::SourceConfig& source) {
  const auto& env = twenty_settings(source).webhook.secret_env;
  const char* v = std::getenv(env.c_str());
  if (!v || !*v) {
    throw common::ConfigError("source " + source.name + ": the environment variable " + env +
                              " (twenty.webhook.secret_env) holding the webhook secret is not set");
  }
  return v;
}

// The Mapper resolves mapped columns against an adapter's columns; a webhook has the configured ones.
class ConfiguredColumns : public SourceAdapter {
 public:
  explicit ConfiguredColumns(const common::SourceConfig& source) {
    for (const auto& [column, field] : source.columns) columns_.push_back(column);
  }
  std::string open() override { return ""; }
  const std::vector<std::string>& columns() const override { return columns_; }
  std::vector<std::string> column_warnings() const override { return {}; }
  bool is_duplicate_column(const std::string&) const override { return false; }
  bool next(SourceRecord&, std::optional<std::string>&) override { return false; }
  double progress() const override { return 1.0; }

 private:
  std::vector<std::string> columns_;
};

}  // namespace

WebhookMetrics::WebhookMetrics(prometheus::Registry& registry)
    : requests(prometheus::BuildCounter()
                   .Name(metric::kWebhookRequests)
                   .Help("Webhook deliveries received, by source and result (accepted, or why not)")
                   .Register(registry)),
      queue_depth(prometheus::BuildGauge()
                      .Name(metric::kWebhookQueueDepth)
                      .Help("Webhook deliveries accepted and not yet published, by source")
                      .Register(registry)) {}

WebhookReceiver::WebhookReceiver(const common::Config& config, const common::SourceConfig& source,
                                 prometheus::Registry* registry)
    : config_(config),
      source_(source),
      settings_(twenty_settings(source)),
      verifier_(secret_of(source), settings_.webhook.tolerance, static_cast<std::size_t>(settings_.webhook.nonce_cache)) {
  if (registry) {
    WebhookMetrics metrics(*registry);
    requests_ = &metrics.requests;
    depth_gauge_ = &metrics.queue_depth.Add({{"source", source.name}});
  }
  producer_ = std::make_unique<common::KafkaProducer>(config.kafka);
  server_ = std::make_unique<httplib::Server>();
  server_->set_payload_max_length(settings_.webhook.max_body_bytes);
  routes();
}

WebhookReceiver::~WebhookReceiver() { stop(); }

int WebhookReceiver::start() {
  const auto& address = settings_.webhook.address;
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    throw common::ConfigError("source " + source_.name + ": twenty.webhook.address: expected HOST:PORT, got '" +
                              address + "'");
  }
  const auto host = address.substr(0, colon);
  const int wanted = std::atoi(address.c_str() + colon + 1);
  const int port = wanted == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, wanted) ? wanted : -1);
  if (port < 0) throw std::runtime_error("source " + source_.name + ": cannot listen on " + address + " for webhooks");
  publisher_ = std::thread([this] { publish_loop(); });
  server_thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  spdlog::info("source {}: Twenty webhooks on http://{}:{}{}", source_.name, host, port, settings_.webhook.path);
  return port;
}

void WebhookReceiver::stop() {
  if (server_) server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (publisher_.joinable()) publisher_.join();
}

bool WebhookReceiver::ready() const {
  std::lock_guard lock(mu_);
  return !stopping_ && kafka_ok_.load() && queue_.size() < static_cast<std::size_t>(settings_.webhook.queue);
}

std::size_t WebhookReceiver::queue_depth() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

void WebhookReceiver::count(const char* result) {
  if (requests_) requests_->Add({{"source", source_.name}, {"result", result}}).Increment();
}

void WebhookReceiver::routes() {
  auto& s = *server_;
  // httplib answers 413 itself for a body over the limit, before any handler: count it here.
  s.set_post_routing_handler([this](const httplib::Request&, httplib::Response& res) {
    if (res.status == 413) count("too_large");
  });
  s.Post(settings_.webhook.path, [this](const httplib::Request& req, httplib::Response& res) {
    const auto verdict = verifier_.verify(req.get_header_value("X-Twenty-Webhook-Timestamp"),
                                          req.get_header_value("X-Twenty-Webhook-Nonce"),
                                          req.get_header_value("X-Twenty-Webhook-Signature"), req.body,
                                          now_micros() / 1000);
    count(twenty::verdict_name(verdict));
    if (verdict != twenty::WebhookVerdict::kAccepted) {
      res.status = 401;
      res.set_content(std::string("rejected: ") + twenty::verdict_name(verdict) + "\n", "text/plain");
      return;
    }
    auto payload = nlohmann::json::parse(req.body, nullptr, false);
    const std::string singular = settings_.object == common::TwentyObject::kPeople ? "person" : "company";
    if (!payload.is_object() || !payload.contains("record") || !payload["record"].is_object() ||
        !payload.contains("eventName") || !payload["eventName"].is_string()) {
      res.status = 400;
      res.set_content("expected Twenty's webhook JSON with eventName and record\n", "text/plain");
      return;
    }
    if (!payload["eventName"].get<std::string>().starts_with(singular + ".")) {
      // Another object's event (a webhook subscribed to all objects): not this source's.
      res.status = 200;
      res.set_content("ignored: not a " + singular + " event\n", "text/plain");
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (queue_.size() >= static_cast<std::size_t>(settings_.webhook.queue)) {
        count("queue_full");
        res.status = 503;
        res.set_header("Retry-After", "1");
        res.set_content("queue full\n", "text/plain");
        return;
      }
      queue_.push_back({std::move(payload), now_micros()});
      if (depth_gauge_) depth_gauge_->Set(static_cast<double>(queue_.size()));
    }
    cv_.notify_one();
    res.status = 200;
    res.set_content("ok\n", "text/plain");
  });
}

void WebhookReceiver::publish_loop() {
  // Without the topic's metadata the first delivery would wait for librdkafka's next periodic
  // metadata scan (about a second), and every delivery queued behind it too.
  producer_->warm_up(config_.kafka.topic);
  for (;;) {
    std::vector<Delivery> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything accepted was published
      // Stopping while Kafka is unreachable: what is left waits for the next poll instead.
      if (stopping_ && !kafka_ok_) {
        spdlog::warn("source {}: stopping with {} webhook deliveries unpublished (Kafka unavailable)", source_.name,
                     queue_.size());
        return;
      }
      while (!queue_.empty() && batch.size() < kBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    try {
      publish_batch(batch);
    } catch (const std::exception& e) {
      // Twenty does not resend: the next poll brings these records (polling is the source of truth).
      spdlog::error("source {}: {} webhook deliveries not published: {}", source_.name, batch.size(),
                    common::redact(e.what()));
    }
    std::lock_guard lock(mu_);
    if (depth_gauge_) depth_gauge_->Set(static_cast<double>(queue_.size()));
  }
}

void WebhookReceiver::publish_batch(std::vector<Delivery>& batch) {
  const auto& entity = config_.entity(source_.entity);
  const ConfiguredColumns columns(source_);
  const Mapper mapper(source_, entity, columns);
  std::vector<Audit> audits;
  std::string buffer;
  common::ChangeEvent event;
  RowError row_error;
  SourceRecord record;
  const auto failed_before = producer_->failed();
  for (auto& d : batch) {
    const auto& payload = d.payload;
    const auto name = payload["eventName"].get<std::string>();
    const auto problem = twenty::to_source_record(payload["record"], columns.columns(), source_.key_column, 0, record);
    if (!problem.empty()) {
      spdlog::warn("source {}: webhook {}: {}", source_.name, name, problem);
      continue;
    }
    if (name.ends_with(".destroyed")) record.op = RecordOp::kDelete;  // hard delete: no deletedAt
    if (record.op == RecordOp::kDelete) {
      event.Clear();
      event.set_key(record.key);
      event.set_entity(entity.name);
      event.set_source(source_.name);
      event.set_origin(source_.name);
      event.set_op(leadsync::v1::OP_DELETE);
      event.set_checksum(0);
    } else if (!mapper.map(record, event, row_error)) {
      spdlog::warn("source {}: webhook {} for {}: column '{}': {}", source_.name, name, record.key, row_error.column,
                   common::storable_text(row_error.message, 300));
      continue;
    }
    const int64_t version = *record.source_version;
    event.set_source_version(version);
    event.set_observed_at_micros(d.received_micros);
    event.set_event_id(common::make_event_id(source_.name, entity.name, event.key(), version, event.checksum()));
    event.SerializeToString(&buffer);
    producer_->produce(config_.kafka.topic, entity.name + "/" + event.key(), buffer);
    if (entity.audit && payload.contains("updatedFields") && payload["updatedFields"].is_array()) {
      audits.push_back({event.key(), event.event_id(), payload["updatedFields"].dump()});
    }
  }
  while (!producer_->flush(std::chrono::seconds(5))) {
    kafka_ok_ = false;
    spdlog::warn("source {}: waiting for Kafka to acknowledge webhook events", source_.name);
    std::lock_guard lock(mu_);
    if (stopping_) break;
  }
  const bool acked = producer_->failed() == failed_before;
  kafka_ok_ = acked;
  if (!acked) throw std::runtime_error("Kafka did not acknowledge every event: " + producer_->first_error());
  published_ += batch.size();
  if (audits.empty()) return;
  // What Twenty said changed, beside the worker's per-field old/new rows of the same event.
  try {
    if (!audit_conn_) audit_conn_ = common::pg_connect(config_.postgres, "leadsync-producer-webhooks");
    write_audit(audits, entity.name);
  } catch (const std::exception& e) {
    audit_conn_.reset();  // reconnect next time
    spdlog::warn("source {}: the updatedFields of {} webhook deliveries were not audited: {}", source_.name,
                 audits.size(), common::redact(e.what()));
  }
}

void WebhookReceiver::write_audit(const std::vector<Audit>& audits, const std::string& entity) {
  pqxx::work tx(*audit_conn_);
  for (const auto& a : audits) {
    tx.exec_params("INSERT INTO leadsync.record_changes (entity, key, changes, source, event_id) "
                   "VALUES ($1, $2, ARRAY[['_updated_fields', NULL, $3::text]], $4, $5)",
                   entity, a.key, a.fields, source_.name, a.event_id);
  }
  tx.commit();
}

WebhookReceivers::WebhookReceivers(const common::Config& config, const std::vector<const common::SourceConfig*>& sources,
                                   prometheus::Registry* registry, std::function<void(bool)> readiness)
    : readiness_(std::move(readiness)) {
  for (const auto* s : sources) {
    const auto* t = std::get_if<common::TwentySettings>(&s->settings);
    if (!t || !t->webhook_enabled) continue;
    receivers_.push_back(std::make_unique<WebhookReceiver>(config, *s, registry));
    receivers_.back()->start();
  }
  if (receivers_.empty() || !readiness_) return;
  watcher_ = std::thread([this] {
    std::unique_lock lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [this] { return stopping_; })) readiness_(ready());
  });
}

WebhookReceivers::~WebhookReceivers() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (watcher_.joinable()) watcher_.join();
}

bool WebhookReceivers::ready() const {
  for (const auto& r : receivers_) {
    if (!r->ready()) return false;
  }
  return true;
}

}  // namespace leadsync::producers
