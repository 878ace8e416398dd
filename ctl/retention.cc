#include "ctl/retention.h"

#include "common/pg.h"

namespace leadsync::ctl {

std::vector<CleanupResult> cleanup(const common::Config& config, const Retention& retention, CleanupMode mode) {
  struct Table {
    const char* name;
    const char* time_column;
    const char* order_column;  // oldest first, by an index: the time column's B-tree, or the id
    int days;
  };
  // The audit's rows come in time order and its `at` index is a BRIN (migration 14): by id.
  const Table tables[] = {{"record_changes", "at", "id", retention.field_changes_days},
                          {"run_apply_stats", "at", "at", retention.run_history_days},
                          {"run_errors", "at", "at", retention.run_history_days},
                          {"backups", "created_at", "created_at", retention.backups_days}};
  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  std::vector<CleanupResult> out;
  for (const auto& t : tables) {
    CleanupResult r{std::string("leadsync.") + t.name, t.days, 0};
    const std::string old = std::string(" WHERE ") + t.time_column + " < now() - make_interval(days => $1)";
    if (mode == CleanupMode::kDryRun) {
      pqxx::work tx(*conn);
      r.deleted = tx.exec_params1(std::string("SELECT count(*) FROM leadsync.") + t.name + old, t.days)[0].as<int64_t>();
    } else {
      // Oldest first, one transaction per batch.
      const std::string sql = std::string("DELETE FROM leadsync.") + t.name + " WHERE ctid = ANY(ARRAY(SELECT ctid FROM leadsync." +
                              t.name + old + " ORDER BY " + t.order_column + " LIMIT $2))";
      for (;;) {
        pqxx::work tx(*conn);
        const auto n = tx.exec_params(sql, t.days, retention.batch).affected_rows();
        tx.commit();
        r.deleted += static_cast<int64_t>(n);
        if (static_cast<int64_t>(n) < retention.batch) break;
      }
    }
    out.push_back(r);
  }
  return out;
}

}  // namespace leadsync::ctl
