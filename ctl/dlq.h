// leadsyncctl dlq list | replay (R5): what is in the dead-letter topic and why, and sending it back
// through the main topic once the cause is fixed (the version guard makes a replay harmless).
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::ctl {

struct DlqFilter {
  std::string key;          // "entity/key", empty = any
  std::string error_class;  // permanent | retryable, empty = any
};

// Prints the dead letters, oldest first (up to `limit`), as text or JSON lines. Returns the count.
int dlq_list(const common::Config& config, const DlqFilter& filter, int limit, bool json);

// The dead letters as `dlq list --json` shows them, oldest first (up to `limit`).
std::vector<nlohmann::json> dlq_entries(const common::Config& config, const DlqFilter& filter, int limit);

// Replays dead letters to the main topic. Without a filter it continues after the last replay
// (a cursor per partition in leadsync.dlq_replay_cursor) so that a dead letter is replayed once;
// with a filter it replays every match. Returns the number replayed.
int dlq_replay(const common::Config& config, const DlqFilter& filter, bool dry_run);

}  // namespace leadsync::ctl
