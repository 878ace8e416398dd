// Collapses a batch to what is applied per (entity, key) (design.md §4, step 2): PostgreSQL cannot
// touch one row twice in one statement, and the older events would lose to the version guard anyway.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common/mapping.h"
#include "workers/apply_counts.h"

namespace leadsync::workers {

// The newest event per (entity, key). On equal versions the later event in the batch wins. Returns,
// per entity, the indexes into `events` to apply, in batch order; every other index is counted as
// stale in `stale_per_run`.
std::map<std::string, std::vector<std::size_t>> newest_per_key(
    const std::vector<const common::ChangeEvent*>& events, std::map<std::string, ApplyCounts>& stale_per_run);

}  // namespace leadsync::workers
