#include "common/capture_schema.h"

#include "common/pg.h"

namespace leadsync::common {
namespace {

std::string array_literal(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const auto& i : items) out += (out.size() > 1 ? "," : "") + std::string("\"") + i + "\"";
  return out + "}";
}

}  // namespace

std::string install_capture_triggers(pqxx::connection& conn, const Config& config) {
  const auto& r = config.reverse;
  const auto& entity = config.entity(r.entity);
  std::vector<std::string> pg_owns, crm_owns, others;
  for (const auto& [field, priority] : r.priority) {
    if (priority == FieldPriority::kPostgres) pg_owns.push_back(field);
    if (priority == FieldPriority::kCrm) crm_owns.push_back(field);
  }
  for (const auto& [field, path] : r.fields) {
    if (r.priority_of(field) != FieldPriority::kPostgres) others.push_back(field);
  }
  const auto table = qualified(conn, config.postgres.schema, entity.table);
  const auto stamp_args = quote_literal(r.source) + ", " + quote_literal(r.crm_origin) + ", " +
                          quote_literal(entity.name) + ", " + quote_literal(entity.key) + ", " +
                          quote_literal(array_literal(pg_owns)) + ", " + quote_literal(array_literal(crm_owns)) + ", " +
                          quote_literal(array_literal(others)) + ", " + quote_literal(array_literal(r.crm_sources));
  const auto capture_args = quote_literal(entity.name) + ", " + quote_literal(entity.key);
  pqxx::work tx(conn);
  tx.exec("SELECT pg_advisory_xact_lock(hashtext('leadsync.migrate'))");
  tx.exec("DROP TRIGGER IF EXISTS leadsync_stamp ON " + table);
  tx.exec("DROP TRIGGER IF EXISTS leadsync_capture ON " + table);
  tx.exec("CREATE TRIGGER leadsync_stamp BEFORE INSERT OR UPDATE ON " + table +
          " FOR EACH ROW EXECUTE FUNCTION leadsync.stamp_row(" + stamp_args + ")");
  if (!r.id_field.empty()) {
    // The worker links a CRM source's record to the row whose id_field holds its key
    // (workers/targets/identity.h): one index lookup per new key, not a scan.
    tx.exec("CREATE INDEX IF NOT EXISTS " + quote_ident(entity.table + "_" + r.id_field + "_crm_id") + " ON " + table +
            " (" + quote_ident(r.id_field) + ")");
  }
  tx.exec("CREATE TRIGGER leadsync_capture AFTER INSERT OR UPDATE OR DELETE ON " + table +
          " FOR EACH ROW EXECUTE FUNCTION leadsync.capture_row(" + capture_args + ")");
  tx.commit();
  return "capture triggers on " + config.postgres.schema + "." + entity.table + " (reverse source '" + r.source + "')";
}

}  // namespace leadsync::common
