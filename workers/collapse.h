// Plans how a batch is applied per (entity, key) (design.md §4, step 2). PostgreSQL cannot touch one
// row twice in one statement, so a batch is applied in rounds of at most one event per key:
//  - an entity of full images applies only the newest event of each key (the older ones would lose
//    to the version guard); when that event fails in the database, the next newest is offered in
//    the next round, so an event is never lost to a newer one that never applied;
//  - an entity with partial events applies every event, newest first, one per key and round: the
//    per-field guard merges them in the row, each field from its newest event, in any order.
// Events that are never offered are counted as stale.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"
#include "workers/apply_counts.h"

namespace leadsync::workers {

// The one rule for which of two events of a record is newer, in a batch and against the table:
// the higher source_version, and on equal versions the greater event_id (byte order), so that the
// outcome never depends on delivery order or on where a batch was cut.
bool newer_than(const common::ChangeEvent& a, const common::ChangeEvent& b);

class BatchPlan {
 public:
  // `events` must outlive the plan; every event's entity is one of config's.
  BatchPlan(const common::Config& config, const std::vector<const common::ChangeEvent*>& events);

  // The next round: per entity, the indexes into `events` to apply in one statement (at most one
  // per key, in batch order). Empty when nothing is left to apply.
  std::map<std::string, std::vector<std::size_t>> next_round();
  // The event at `index`, offered in the last round, failed in the database.
  void failed(std::size_t index);
  // Counts every event never offered as stale, per run (after the last round).
  void count_unoffered(std::map<std::string, ApplyCounts>& per_run) const;

 private:
  struct Key {
    const std::string* entity = nullptr;
    bool every_event = false;      // partial entity: each event is applied
    std::size_t begin = 0, end = 0;  // its events: order_[begin, end), newest first
    std::size_t next = 0;          // the first not yet offered
    bool open = true;              // full images: offer the next one
  };
  const std::vector<const common::ChangeEvent*>& events_;
  std::vector<Key> keys_;
  std::vector<std::size_t> key_of_;  // per event: its entry in keys_
  std::vector<std::size_t> order_;   // event indexes, by key
};

}  // namespace leadsync::workers
