// Rows of an entity table kept in leadsync.backups before a repair changes them, and put back by
// rollback (ctl/repair.h). Each column is stored as PostgreSQL's text of it (TimeZone UTC, DateStyle
// ISO), which casts back to the same value, so a rollback restores the bytes that were there.
#pragma once

#include <pqxx/pqxx>

#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::ctl {

// One backup row per key (row_data NULL when the table has no row with that key).
void back_up_rows(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity,
                  const std::string& source, const std::string& run_id, const std::string& backup_id,
                  const std::vector<std::string>& keys);

}  // namespace leadsync::ctl
