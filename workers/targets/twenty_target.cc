#include "workers/targets/twenty_target.h"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "common/errors.h"
#include "common/metric_names.h"
#include "common/pg.h"
#include "common/redact.h"
#include "workers/collapse.h"

namespace leadsync::workers {

using nlohmann::json;

struct TwentyTarget::Pending {
  Record* record = nullptr;
  std::string crm_id;
  bool write_back_id = false;        // the id is not yet in reverse.id_field
  std::vector<FieldDecision> decisions;
  int64_t crm_version = 0;
};

namespace {

bool is_outage(const common::HttpError& e) {
  return e.failure() != common::HttpFailure::kStatus || e.status() == 429 || e.status() >= 500;
}

json create_body(const common::ReverseConfig& reverse, const common::ChangeEvent& e, const std::string& id) {
  json record = json::object();
  record["id"] = id;
  for (const auto& [field, path] : reverse.fields) {
    const auto it = e.fields().find(field);
    if (it != e.fields().end()) set_crm_field(record, path, crm_json(it->second));
  }
  return record;
}

}  // namespace

CrmSinkMetrics::CrmSinkMetrics(prometheus::Registry& registry)
    : writes(prometheus::BuildCounter()
                 .Name(metric::kCrmWrites)
                 .Help("Records written to the CRM by the reverse direction, by op")
                 .Register(registry)),
      decisions(prometheus::BuildCounter()
                    .Name(metric::kConflictDecisions)
                    .Help("Conflict decisions between PostgreSQL and the CRM, by winner and rule")
                    .Register(registry)) {}

TwentyTarget::TwentyTarget(const common::Config& config, WorkerMetrics& metrics, prometheus::Registry& registry,
                           common::HttpSleep sleep)
    : config_(config),
      reverse_(config.reverse),
      metrics_(metrics),
      sink_metrics_(registry),
      sleep_(std::move(sleep)) {}

bool TwentyTarget::connect() {
  try {
    const char* key = std::getenv(reverse_.twenty.api_key_env.c_str());
    if (!key || !*key) {
      spdlog::error("crm sink: the environment variable {} (reverse.twenty.api_key_env) holds no API key",
                    reverse_.twenty.api_key_env);
      return up_ = false;
    }
    if (!client_) client_.emplace(reverse_.twenty, key, sleep_);
    conn_ = common::pg_connect(config_.postgres, "leadsync-crm-sink");
    metrics_.database_up.Set(1);
    return up_ = true;
  } catch (const std::exception& e) {
    spdlog::warn("crm sink: cannot connect to PostgreSQL: {}", common::redact(e.what()));
    metrics_.database_up.Set(0);
    return up_ = false;
  }
}

void TwentyTarget::unavailable(const std::string& what) {
  up_ = conn_ && conn_->is_open();
  throw TargetUnavailable(Unavailability::kOutage, what);
}

RunCounts TwentyTarget::apply(const std::vector<Record*>& records) {
  ApplyCounts counts;
  // The newest event of each key; the older ones are stale by definition.
  std::map<std::string, Record*> newest;
  for (auto* r : records) {
    if (r->failure) continue;
    if (r->event->entity() != reverse_.entity) {
      r->failure = Failure{common::ErrorClass::kPermanent, "validation",
                           "entity '" + r->event->entity() + "' is not the reverse direction's '" + reverse_.entity + "'",
                           ""};
      continue;
    }
    auto& slot = newest[r->event->key()];
    if (!slot || newer_than(*r->event, *slot->event)) {
      if (slot) ++counts.stale;
      slot = r;
    } else {
      ++counts.stale;
    }
  }
  std::vector<Pending> plans;
  std::vector<std::string> ids;
  for (auto& [key, r] : newest) {
    Pending p;
    p.record = r;
    const auto id = r->event->fields().find(reverse_.id_field);
    if (id != r->event->fields().end() && id->second.kind_case() == common::Value::kStringValue &&
        !id->second.string_value().empty()) {
      p.crm_id = id->second.string_value();
    } else {
      p.crm_id = crm_id_for(reverse_.source, r->event->entity(), key);
      p.write_back_id = true;
    }
    ids.push_back(p.crm_id);
    plans.push_back(std::move(p));
  }
  if (plans.empty()) return {{"", counts}};
  try {
    const auto held = client_->find(ids);
    std::vector<Pending> creates, updates;
    for (auto& p : plans) {
      if (p.record->event->op() == v1::OP_DELETE) {
        if (held.count(p.crm_id)) {
          client_->remove(p.crm_id);
          sink_metrics_.writes.Add({{"op", "delete"}}).Increment();
        }
        ++counts.deleted;
        continue;
      }
      if (held.count(p.crm_id)) {
        updates.push_back(std::move(p));
      } else if (p.write_back_id) {
        creates.push_back(std::move(p));
      } else {
        p.record->failure = Failure{common::ErrorClass::kPermanent, "crm",
                                    "the CRM has no record " + p.crm_id + " (deleted there?)", reverse_.id_field};
      }
    }
    link_creates(creates);
    apply_creates(creates, counts);
    apply_updates(updates, held, counts);
    std::vector<Pending> done;
    for (auto* list : {&creates, &updates}) {
      for (auto& p : *list) {
        if (!p.record->failure) done.push_back(std::move(p));
      }
    }
    write_postgres(done);
  } catch (const common::HttpError& e) {
    if (is_outage(e)) unavailable("CRM: " + common::redact(e.what()));
    throw;  // a 4xx outside any one record (find): the deployment does not fit
  }
  return {{"", counts}};
}

void TwentyTarget::apply_creates(std::vector<Pending>& creates, ApplyCounts& counts) {
  const auto size = static_cast<std::size_t>(reverse_.twenty.batch_size);
  for (std::size_t i = 0; i < creates.size(); i += size) {
    const std::size_t end = std::min(creates.size(), i + size);
    json batch = json::array();
    for (std::size_t j = i; j < end; ++j) batch.push_back(create_body(reverse_, *creates[j].record->event, creates[j].crm_id));
    try {
      client_->create_batch(batch);
      sink_metrics_.writes.Add({{"op", "create"}}).Increment(static_cast<double>(end - i));
      counts.inserted += static_cast<int64_t>(end - i);
      continue;
    } catch (const common::HttpError& e) {
      if (is_outage(e) || end - i == 1) {
        if (is_outage(e)) throw;
        creates[i].record->failure =
            Failure{common::ErrorClass::kPermanent, "crm", "create rejected: " + common::redact(e.what()), ""};
        continue;
      }
    }
    // A rejected batch: one by one, so that only the record the CRM rejects fails.
    for (std::size_t j = i; j < end; ++j) {
      try {
        client_->create_batch(json::array({batch[j - i]}));
        sink_metrics_.writes.Add({{"op", "create"}}).Increment();
        ++counts.inserted;
      } catch (const common::HttpError& e) {
        if (is_outage(e)) throw;
        creates[j].record->failure =
            Failure{common::ErrorClass::kPermanent, "crm", "create rejected: " + common::redact(e.what()), ""};
      }
    }
  }
}

void TwentyTarget::apply_updates(std::vector<Pending>& updates, const std::map<std::string, json>& held,
                                 ApplyCounts& counts) {
  for (auto& p : updates) {
    const auto& record = held.at(p.crm_id);
    const auto* updated_at = crm_field(record, "updatedAt");
    p.crm_version = 0;
    if (updated_at && updated_at->is_string()) {
      p.crm_version = common::parse_timestamp_micros(updated_at->get<std::string>()).value_or(0);
    }
    p.decisions = decide_fields(reverse_, *p.record->event, record, p.crm_version);
    json changes = json::object();
    for (const auto& d : p.decisions) {
      if (d.winner == Side::kPostgres) set_crm_field(changes, d.path, d.postgres_value);
    }
    if (changes.empty()) {
      ++counts.unchanged;
      continue;
    }
    try {
      client_->update(p.crm_id, changes);
      sink_metrics_.writes.Add({{"op", "update"}}).Increment();
      ++counts.updated;
    } catch (const common::HttpError& e) {
      if (is_outage(e)) throw;
      p.record->failure = Failure{common::ErrorClass::kPermanent, "crm", "update rejected: " + common::redact(e.what()), ""};
    }
  }
}

// Before the CRM has the records: their ids are linked to their rows in leadsync.identities, so that
// the inbound direction applies a webhook or poll of a new record to the row it came from even when
// it arrives before write_postgres() wrote the id back (workers/targets/identity.h). A create that
// then fails leaves a link to an id that names no CRM record; a retried create uses the same id.
void TwentyTarget::link_creates(const std::vector<Pending>& creates) {
  if (creates.empty()) return;
  common::TextArrayLiteral ids, keys;
  for (const auto& p : creates) {
    ids.add(std::string_view(p.crm_id));
    keys.add(std::string_view(p.record->event->key()));
  }
  try {
    pqxx::work tx(*conn_);
    tx.exec("SELECT set_config('leadsync.origin', 'crm-sink', true)");
    tx.exec_params(
        "INSERT INTO leadsync.identities (entity, field, value, key) SELECT $1, f, i, k FROM unnest($2::text[], "
        "$3::text[]) AS x(i, k) CROSS JOIN unnest(ARRAY['_key', $4]) AS f ON CONFLICT (entity, field, value) DO "
        "UPDATE SET key = EXCLUDED.key, linked_at = now() WHERE leadsync.identities.key IS DISTINCT FROM EXCLUDED.key",
        reverse_.entity, ids.str(), keys.str(), reverse_.id_field);
    tx.commit();
  } catch (const std::exception& e) {
    unavailable("PostgreSQL: " + std::string(e.what()).substr(0, 300));
  }
}

// One leadsync transaction: the CRM ids of created records, the values the CRM won, the audit.
void TwentyTarget::write_postgres(const std::vector<Pending>& done) {
  const auto& entity = config_.entity(reverse_.entity);
  const auto table = common::quote_ident(config_.postgres.schema) + "." + common::quote_ident(entity.table);
  const auto key = common::quote_ident(entity.key);
  try {
    pqxx::work tx(*conn_);
    tx.exec("SELECT set_config('leadsync.origin', 'crm-sink', true)");
    for (const auto& p : done) {
      const auto& e = *p.record->event;
      if (p.write_back_id) {
        tx.exec_params("UPDATE " + table + " SET " + common::quote_ident(reverse_.id_field) + " = $1 WHERE " + key +
                           " = $2 AND " + common::quote_ident(reverse_.id_field) + " IS DISTINCT FROM $1",
                       p.crm_id, e.key());
      }
      json crm_won = json::object();
      for (const auto& d : p.decisions) {
        if (d.winner == Side::kCrm && reverse_.priority_of(d.field) == common::FieldPriority::kCrm) {
          crm_won[d.field] = d.crm_value;
        }
        tx.exec_params(
            "INSERT INTO leadsync.conflict_decisions (entity, key, field, direction, postgres_value, crm_value, "
            "postgres_version, crm_version, winner, rule) VALUES ($1, $2, $3, 'to_crm', $4, $5, $6, $7, $8, $9)",
            e.entity(), e.key(), d.field, d.postgres_value.dump(), d.crm_value.dump(), e.source_version(), p.crm_version,
            std::string(side_name(d.winner)),
            std::string(d.rule == common::FieldPriority::kLastWriteWins ? "last_write_wins" : "priority"));
        sink_metrics_.decisions
            .Add({{"winner", side_name(d.winner)},
                  {"rule", d.rule == common::FieldPriority::kLastWriteWins ? "last_write_wins" : "priority"}})
            .Increment();
      }
      if (crm_won.empty()) continue;
      // The CRM's value of a field it owns replaces the application's: both sides converge.
      std::string sets;
      for (const auto& [field, value] : crm_won.items()) {
        sets += (sets.empty() ? "" : ", ") + common::quote_ident(field) + " = (jsonb_populate_record(NULL::" + table +
                ", $1::jsonb))." + common::quote_ident(field);
      }
      tx.exec_params("UPDATE " + table + " SET " + sets + " WHERE " + key + " = $2", crm_won.dump(), e.key());
    }
    tx.commit();
  } catch (const std::exception& e) {
    if (common::classify_pg_error(e) == common::ErrorClass::kInfrastructure) {
      unavailable("PostgreSQL: " + std::string(e.what()).substr(0, 300));
    }
    // A data error here is a configuration problem (the id column's type): fail the records.
    for (const auto& p : done) {
      p.record->failure = Failure{common::ErrorClass::kPermanent, "database", std::string(e.what()).substr(0, 300), ""};
    }
  }
}

}  // namespace leadsync::workers
