// The JSON shape of a run and of a source's run state, shared by `leadsyncctl runs --json` and the
// producer's HTTP API (producers/api), so that both speak the same words (R3).
#pragma once

#include <nlohmann/json.hpp>

#include "common/runs.h"

namespace leadsync::common {

nlohmann::json run_to_json(const RunInfo& run);
// What the workers applied of a run's `published` events, with what is still pending.
nlohmann::json applied_to_json(const AppliedCounts& applied, int64_t published);
nlohmann::json source_state_to_json(const SourceRunState& state);

}  // namespace leadsync::common
