// leadsync's own tables (schema `leadsync`, versioned migrations) and the target tables derived
// from the entity mapping (interfaces.md "Tables").
#pragma once

#include <pqxx/pqxx>

#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::common {

// Applies pending migrations and creates or extends every entity's target table, in one
// transaction per step, serialised by an advisory lock so that concurrent callers are safe.
// Returns one line per action. Throws ConfigError when an existing column has a conflicting type.
std::vector<std::string> migrate(pqxx::connection& conn, const Config& config);

// Applies the pending migrations of schema `leadsync` up to `up_to` (no entity tables): migrate()'s
// first step. A test of a migration starts from the version before it.
std::vector<std::string> migrate_leadsync_schema(pqxx::connection& conn, int up_to);

// The newest migration version this build knows.
int schema_version();

}  // namespace leadsync::common
