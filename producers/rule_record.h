// Records which scoring/segment rule set a run applies (issue 14): the definition once per version
// in leadsync.rule_sets, and the version on the run's row, so that an audited score change (its
// event and run in leadsync.field_changes) leads to the exact rules that computed it.
#pragma once

#include <pqxx/pqxx>

#include <string>

#include "common/config.h"

namespace leadsync::producers {

void record_rule_set(pqxx::connection& conn, const std::string& run_id, const common::EntityConfig& entity);

}  // namespace leadsync::producers
