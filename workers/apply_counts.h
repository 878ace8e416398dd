// What applying a batch did with its events, per run: the numbers `leadsync.run_apply_stats` keeps
// and `leadsyncctl status` reports.
#pragma once

#include <cstdint>

namespace leadsync::workers {

struct ApplyCounts {
  int64_t inserted = 0;
  int64_t updated = 0;
  int64_t deleted = 0;
  int64_t unchanged = 0;  // newer version, same content: only _version moved
  int64_t stale = 0;      // older than or equal to what the table has: ignored
  int64_t failed = 0;     // dead-lettered

  ApplyCounts& operator+=(const ApplyCounts& o) {
    inserted += o.inserted;
    updated += o.updated;
    deleted += o.deleted;
    unchanged += o.unchanged;
    stale += o.stale;
    failed += o.failed;
    return *this;
  }
  int64_t total() const { return inserted + updated + deleted + unchanged + stale + failed; }
};

}  // namespace leadsync::workers
