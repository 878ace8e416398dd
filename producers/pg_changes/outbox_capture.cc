#include "producers/pg_changes/outbox_capture.h"

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "common/metric_names.h"
#include "common/pg.h"
#include "common/redact.h"

namespace leadsync::producers {
namespace {

using common::FieldType;
using common::Value;
using nlohmann::json;

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A column of to_jsonb(row) as the field's typed value; nullopt when it does not fit.
std::optional<Value> json_value(const common::FieldConfig& f, const json& j) {
  Value v;
  if (j.is_null()) {
    v.set_null_value(true);
    return v;
  }
  switch (f.type) {
    case FieldType::kText:
      if (!j.is_string()) return std::nullopt;
      v.set_string_value(j.get<std::string>());
      return v;
    case FieldType::kInt:
      if (!j.is_number_integer()) return std::nullopt;
      v.set_int_value(j.get<int64_t>());
      return v;
    case FieldType::kFloat:
      if (!j.is_number()) return std::nullopt;
      v.set_double_value(j.get<double>());
      return v;
    case FieldType::kBool:
      if (!j.is_boolean()) return std::nullopt;
      v.set_bool_value(j.get<bool>());
      return v;
    case FieldType::kTimestamp:
    case FieldType::kDate: {
      if (!j.is_string()) return std::nullopt;
      const auto micros = common::parse_timestamp_micros(j.get<std::string>());
      if (!micros) return std::nullopt;
      v.set_timestamp_micros(*micros);
      return v;
    }
    case FieldType::kTextList: {
      if (!j.is_array()) return std::nullopt;
      auto* list = v.mutable_string_list();
      for (const auto& item : j) {
        if (!item.is_string()) return std::nullopt;
        list->add_values(item.get<std::string>());
      }
      return v;
    }
    case FieldType::kJson:
      v.set_json_value(j.dump());
      return v;
  }
  return std::nullopt;
}

}  // namespace

std::optional<common::ChangeEvent> outbox_event(const common::Config& config, const OutboxRow& row,
                                                std::string& error) {
  const auto& r = config.reverse;
  const auto& entity = config.entity(row.entity);
  const auto doc = json::parse(row.payload, nullptr, false);
  if (!doc.is_object()) {
    error = "outbox row " + std::to_string(row.id) + ": payload is not a JSON object";
    return std::nullopt;
  }
  common::ChangeEvent e;
  e.set_source(r.source);
  e.set_entity(row.entity);
  e.set_key(row.key);
  e.set_op(row.deleted ? v1::OP_DELETE : v1::OP_UPSERT);
  e.set_partial(false);
  e.set_source_version(row.version);
  e.set_observed_at_micros(row.created_micros > 0 ? row.created_micros : now_micros());
  e.set_origin("postgres");
  auto& fields = *e.mutable_fields();
  for (const auto& f : entity.fields) {
    const auto it = doc.find(f.name);
    if (it == doc.end()) continue;
    auto v = json_value(f, *it);
    if (!v) {
      error = "outbox row " + std::to_string(row.id) + " (" + row.entity + " '" + row.key + "'): column " + f.name +
              " holds " + it->dump() + ", not a " + common::field_type_name(f.type);
      return std::nullopt;
    }
    fields[f.name] = *v;
  }
  // A record that came from the CRM is keyed by its CRM id: the sink finds it by that.
  const auto source = doc.find("_source");
  const bool from_crm = source != doc.end() && source->is_string() &&
                        std::count(r.crm_sources.begin(), r.crm_sources.end(), source->get<std::string>()) > 0;
  const auto id = fields.find(r.id_field);
  if (from_crm && (id == fields.end() || id->second.has_null_value())) fields[r.id_field].set_string_value(row.key);
  e.set_checksum(common::fields_checksum(e.fields()));
  e.set_event_id(common::make_event_id(e.source(), e.entity(), e.key(), e.source_version(), e.checksum()));
  return e;
}

CaptureMetrics::CaptureMetrics(prometheus::Registry& registry, const std::string& source)
    : lag(prometheus::BuildGauge()
              .Name(metric::kCaptureLagSeconds)
              .Help("Age of the oldest application change in the outbox not yet acknowledged by Kafka")
              .Register(registry)
              .Add({{"source", source}})),
      published(prometheus::BuildCounter()
                    .Name(metric::kEventsCaptured)
                    .Help("Application changes captured from PostgreSQL, by result")
                    .Register(registry)
                    .Add({{"source", source}, {"result", "published"}})),
      unreadable(prometheus::BuildCounter()
                     .Name(metric::kEventsCaptured)
                     .Help("Application changes captured from PostgreSQL, by result")
                     .Register(registry)
                     .Add({{"source", source}, {"result", "unreadable"}})) {}

OutboxCapture::OutboxCapture(const common::Config& config, prometheus::Registry& registry)
    : config_(config),
      relation_(config.postgres.schema + "." + config.entity(config.reverse.entity).table),
      producer_(config.kafka),
      metrics_(registry, config.reverse.source) {}

OutboxCapture::~OutboxCapture() { producer_.flush(std::chrono::seconds(10)); }

bool OutboxCapture::connect() {
  if (conn_ && conn_->is_open()) return true;
  conn_ = common::pg_connect(config_.postgres, "leadsync-capture");
  return true;
}

std::size_t OutboxCapture::run_once() {
  connect();
  std::vector<OutboxRow> rows;
  {
    pqxx::read_transaction tx(*conn_);
    const auto result = tx.exec_params(
        "SELECT id, aggregate_type, aggregate_id, type = 'delete', payload::text, version, "
        "(extract(epoch FROM created_at) * 1000000)::bigint FROM leadsync.outbox WHERE relation = $1 ORDER BY id "
        "LIMIT $2",
        relation_, config_.reverse.capture_batch);
    for (const auto& r : result) {
      rows.push_back({r[0].as<int64_t>(), r[1].as<std::string>(), r[2].as<std::string>(), r[3].as<bool>(),
                      r[4].as<std::string>(), r[5].as<int64_t>(), r[6].as<int64_t>()});
    }
  }
  if (rows.empty()) return 0;
  std::vector<std::pair<int64_t, std::shared_ptr<const common::Delivery>>> sent;
  std::vector<int64_t> done;  // acknowledged, or unreadable (logged and counted: retrying cannot help)
  for (const auto& row : rows) {
    std::string error;
    const auto event = outbox_event(config_, row, error);
    if (!event) {
      spdlog::error("capture: {}", error);
      metrics_.unreadable.Increment();
      done.push_back(row.id);
      continue;
    }
    sent.emplace_back(row.id, producer_.produce_tracked(config_.reverse.topic, event->entity() + "/" + event->key(),
                                                        event->SerializeAsString()));
  }
  producer_.flush(std::chrono::seconds(30));
  std::string first_error;
  std::size_t published = 0;
  for (const auto& [id, delivery] : sent) {
    if (delivery->state() == common::Delivery::State::kDelivered) {
      done.push_back(id);
      ++published;
    } else if (first_error.empty()) {
      first_error = delivery->state() == common::Delivery::State::kFailed ? delivery->error() : "no delivery report";
    }
  }
  if (!done.empty()) {
    pqxx::work tx(*conn_);
    tx.exec_params("DELETE FROM leadsync.outbox WHERE id = ANY($1::bigint[])",
                   "{" + [&] {
                     std::string ids;
                     for (const auto id : done) ids += (ids.empty() ? "" : ",") + std::to_string(id);
                     return ids;
                   }() + "}");
    tx.commit();
  }
  metrics_.published.Increment(static_cast<double>(published));
  if (!first_error.empty()) {
    throw std::runtime_error("capture: " + std::to_string(sent.size() - published) +
                             " change(s) not acknowledged by Kafka (" + first_error + "); they stay in the outbox");
  }
  return published;
}

void OutboxCapture::sample_lag() {
  connect();
  pqxx::read_transaction tx(*conn_);
  const auto r = tx.exec_params1(
      "SELECT coalesce(extract(epoch FROM clock_timestamp() - (SELECT created_at FROM leadsync.outbox WHERE relation = "
      "$1 ORDER BY id LIMIT 1)), 0)::float8",
      relation_);
  metrics_.lag.Set(std::max(0.0, r[0].as<double>()));
}

void OutboxCapture::run(const std::atomic<bool>& stop, common::Telemetry& telemetry) {
  using Clock = std::chrono::steady_clock;
  std::unique_ptr<pqxx::connection> lock_conn;
  auto backoff = std::chrono::milliseconds(250);
  auto sleep_for = [&](std::chrono::milliseconds d) {
    for (auto until = Clock::now() + d; !stop.load() && Clock::now() < until;) {
      telemetry.heartbeat();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  };
  while (!stop.load()) {
    telemetry.heartbeat();
    try {
      if (!lock_conn || !lock_conn->is_open()) {
        telemetry.set_ready(false);
        lock_conn = common::pg_connect(config_.postgres, "leadsync-capture-lock");
        pqxx::nontransaction tx(*lock_conn);
        if (!tx.exec_params1("SELECT pg_try_advisory_lock(hashtext('leadsync.capture:' || $1))", relation_)[0].as<bool>()) {
          lock_conn.reset();  // another capture runs: stand by
          sleep_for(std::chrono::seconds(2));
          continue;
        }
        spdlog::info("capture: publishing {}'s application changes to {}", config_.reverse.entity,
                     config_.reverse.topic);
        telemetry.set_ready(true);
      }
      const auto published = run_once();
      sample_lag();
      backoff = std::chrono::milliseconds(250);
      if (published == 0) sleep_for(config_.reverse.poll_interval);
    } catch (const std::exception& e) {
      spdlog::error("capture: {}; trying again in {} ms", common::redact(e.what()), backoff.count());
      conn_.reset();
      sleep_for(backoff);
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10'000));
    }
  }
  telemetry.set_ready(false);
}

}  // namespace leadsync::producers
