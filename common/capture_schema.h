// The triggers of the reverse direction (design.md §9) on the captured entity's table: one stamps
// applications' edits and keeps the fields PostgreSQL owns when the CRM's change is applied, one
// writes applications' changes to leadsync.outbox. The functions they call come with migration 6
// (common/schema.cc); this binds them to the configured table, fields and priorities.
#pragma once

#include <pqxx/pqxx>

#include <string>

#include "common/config.h"

namespace leadsync::common {

// (Re)creates both triggers on config.reverse.entity's table; returns what it did, in one line.
std::string install_capture_triggers(pqxx::connection& conn, const Config& config);

}  // namespace leadsync::common
