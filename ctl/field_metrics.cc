#include "ctl/field_metrics.h"

#include "common/metric_names.h"

namespace leadsync::ctl {

FieldMetrics::FieldMetrics(prometheus::Registry& registry)
    : applied(prometheus::BuildCounter()
                  .Name(metric::kFieldApplied)
                  .Help("Applied events (inserted, updated or unchanged) of runs of the entity's sources that wrote "
                        "the field, by entity and field")
                  .Register(registry)),
      changed(prometheus::BuildCounter()
                  .Name(metric::kFieldChanged)
                  .Help("Applied updates that changed the field's stored value (rows of the audit, "
                        "leadsync.field_changes), by entity and field")
                  .Register(registry)),
      rejected(prometheus::BuildCounter()
                   .Name(metric::kFieldRejected)
                   .Help("Source records rejected because of the field's column (leadsync.run_errors), by entity "
                         "and field")
                   .Register(registry)),
      errors(prometheus::BuildCounter()
                 .Name(metric::kFieldCountErrors)
                 .Help("Samples of the field counters that failed (database unreachable, schema not migrated)")
                 .Register(registry)
                 .Add({})) {}

FieldCounter::FieldCounter(const common::Config& config, FieldMetrics& metrics) : config_(config), metrics_(metrics) {
  for (const auto& [name, e] : config.entities) {
    for (const auto& f : e.fields) {
      fields_of_entity_[e.name][f.name] = true;
      metrics.applied.Add({{"entity", e.name}, {"field", f.name}});
      metrics.rejected.Add({{"entity", e.name}, {"field", f.name}});
      if (e.audit) metrics.changed.Add({{"entity", e.name}, {"field", f.name}});
    }
  }
  for (const auto& s : config.sources) {
    auto& [entity, field_of_column] = source_[s.name];
    entity = s.entity;
    for (const auto& [column, field] : s.columns) field_of_column[column] = field;
  }
}

void FieldCounter::sample(pqxx::connection& conn) {
  pqxx::nontransaction tx(conn);
  // The snapshot first, then the sequences' ends: a transaction that took an id up to an earlier
  // mark's end had its transaction id long before this snapshot, so it is finished or listed here.
  const auto snapshot = tx.exec1("SELECT pg_current_snapshot()::text")[0].as<std::string>();
  for (auto& m : pending_) {
    if (!m.snapshot) m.snapshot = snapshot;
  }
  while (!pending_.empty() && pending_.front().snapshot) {
    const bool finished =
        tx.exec_params1("SELECT NOT EXISTS (SELECT 1 FROM pg_snapshot_xip($1::pg_snapshot) x WHERE "
                        "pg_xact_status(x) = 'in progress')",
                        *pending_.front().snapshot)[0]
            .as<bool>();
    if (!finished) break;
    count(tx, *counted_, pending_.front().ends);
    counted_ = pending_.front().ends;
    pending_.pop_front();
  }
  const auto r = tx.exec1(
      "SELECT coalesce(pg_sequence_last_value(pg_get_serial_sequence('leadsync.record_changes', 'id')), 0), "
      "coalesce(pg_sequence_last_value(pg_get_serial_sequence('leadsync.run_errors', 'id')), 0), "
      "coalesce(pg_sequence_last_value(pg_get_serial_sequence('leadsync.run_apply_stats', 'id')), 0)");
  const Ends ends{r[0].as<int64_t>(), r[1].as<int64_t>(), r[2].as<int64_t>()};
  if (!counted_) {
    counted_ = ends;  // counting starts here
    return;
  }
  pending_.push_back({ends, std::nullopt});
}

void FieldCounter::count(pqxx::transaction_base& tx, const Ends& from, const Ends& to) {
  if (to.changes > from.changes) {
    for (const auto& r : tx.exec_params("SELECT entity, field, count(*) FROM leadsync.field_changes WHERE id > $1 AND "
                                        "id <= $2 GROUP BY entity, field",
                                        from.changes, to.changes)) {
      const auto entity = r[0].as<std::string>(), field = r[1].as<std::string>();
      const auto e = fields_of_entity_.find(entity);
      // '*' (an insert), '_deleted' and fields no longer mapped are not fields of the mapping.
      if (e == fields_of_entity_.end() || !e->second.count(field) || !config_.entity(entity).audit) continue;
      metrics_.changed.Add({{"entity", entity}, {"field", field}}).Increment(r[2].as<double>());
    }
  }
  if (to.errors > from.errors) {
    for (const auto& r : tx.exec_params("SELECT source, column_name, count(*) FROM leadsync.run_errors WHERE id > $1 "
                                        "AND id <= $2 AND column_name IS NOT NULL GROUP BY source, column_name",
                                        from.errors, to.errors)) {
      const auto s = source_.find(r[0].as<std::string>());
      if (s == source_.end()) continue;
      const auto f = s->second.second.find(r[1].as<std::string>());
      if (f == s->second.second.end()) continue;
      metrics_.rejected.Add({{"entity", s->second.first}, {"field", f->second}}).Increment(r[2].as<double>());
    }
  }
  if (to.stats > from.stats) {
    for (const auto& r : tx.exec_params("SELECT r.source, sum(s.inserted + s.updated + s.unchanged) FROM "
                                        "leadsync.run_apply_stats s JOIN leadsync.sync_runs r ON r.run_id = s.run_id "
                                        "WHERE s.id > $1 AND s.id <= $2 GROUP BY r.source",
                                        from.stats, to.stats)) {
      const auto s = source_.find(r[0].as<std::string>());
      if (s == source_.end() || r[1].is_null()) continue;
      const auto n = r[1].as<double>();
      if (n <= 0) continue;
      for (const auto& [field, _] : fields_of_entity_[s->second.first]) {
        metrics_.applied.Add({{"entity", s->second.first}, {"field", field}}).Increment(n);
      }
    }
  }
}

}  // namespace leadsync::ctl
