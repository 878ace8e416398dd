// The records a run rejected, in leadsync.run_errors (R2): written with the run's end, in its
// transaction but behind a savepoint, so that the run's status is stored even when they cannot
// be. The run's own row is the run store's (common/runs.h).
#pragma once

#include <pqxx/pqxx>

#include <string>
#include <vector>

#include "producers/source.h"

namespace leadsync::producers {

// Returns false with `problem` set when the details could not be stored (the transaction stays usable).
bool write_run_errors(pqxx::work& tx, const std::string& source, const std::string& run_id,
                      const std::vector<RowError>& errors, std::string& problem);

}  // namespace leadsync::producers
