// What a run stores as its checkpoint (leadsync.sync_runs.checkpoint): the adapter's own opaque
// checkpoint, plus what the run needs to carry on where it stopped — the mapping and target it read
// under (a resume under another one would mix two mappings), the snapshot's fingerprint, whether the
// read was incremental or publishing every record, and the guardrails' counts so far.
// A completed run stores one too: its `at` is the cursor the next incremental read starts from.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "common/config.h"

namespace leadsync::producers {

enum class ReadMode { kSnapshot, kIncremental };

struct ReadPosition {
  std::string at;        // SourceAdapter::checkpoint()
  std::string mapping;   // mapping_fingerprint() of the run
  std::string snapshot;  // the snapshot hash, when the source gave one
  ReadMode mode = ReadMode::kSnapshot;
  bool publish_all = false;      // a full publish (checksums ignored)
  uint64_t valid_rows = 0;       // see sync_run.cc
  uint64_t unreadable_rows = 0;

  std::string text() const;
  // nullopt for text that is not a position (a checkpoint of an older version).
  static std::optional<ReadPosition> parse(const std::string& text);
};

// What turns a snapshot's bytes into events: the same sheet under a new mapping, field rule,
// encoding or target is new work.
std::string mapping_fingerprint(const common::SourceConfig& s, const common::EntityConfig& e,
                                const std::string& target_stamp);

}  // namespace leadsync::producers
