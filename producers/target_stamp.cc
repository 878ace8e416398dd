#include "producers/target_stamp.h"

#include "common/pg.h"

namespace leadsync::producers {

TargetStamp read_target_stamp(pqxx::connection& conn, const common::Config& config,
                              const common::EntityConfig& entity) {
  const auto table = common::qualified(conn, config.postgres.schema, entity.table);
  pqxx::work tx(conn);
  const auto ids = tx.exec_params1(
      "SELECT d.oid::text, coalesce(to_regclass($1)::oid::text, 'absent') FROM pg_database d "
      "WHERE d.datname = current_database()",
      table);
  TargetStamp t;
  t.stamp = entity.name + "@" + config.postgres.schema + "." + entity.table + "#" + ids[0].as<std::string>() + "." +
            ids[1].as<std::string>();
  if (ids[1].as<std::string>() != "absent") t.has_rows = tx.exec1("SELECT EXISTS (SELECT 1 FROM " + table + ")")[0].as<bool>();
  tx.commit();
  return t;
}

}  // namespace leadsync::producers
