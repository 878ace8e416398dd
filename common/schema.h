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

// The newest migration version this build knows.
int schema_version();

}  // namespace leadsync::common
