#include "producers/rule_record.h"

#include "common/scoring.h"

namespace leadsync::producers {

void record_rule_set(pqxx::connection& conn, const std::string& run_id, const common::EntityConfig& entity) {
  if (!entity.rules) return;
  pqxx::work tx(conn);
  tx.exec_params(
      "INSERT INTO leadsync.rule_sets (entity, version, definition, first_run_id) VALUES ($1, $2, $3, $4) "
      "ON CONFLICT (entity, version) DO NOTHING",
      entity.name, entity.rules->version(), entity.rules->definition(), run_id);
  tx.exec_params("UPDATE leadsync.sync_runs SET rules_version = $2 WHERE run_id = $1", run_id,
                 entity.rules->version());
  tx.commit();
}

}  // namespace leadsync::producers
