// A source's snapshot, mapped exactly as the producer maps it, delivered in key order (byte order,
// PostgreSQL's COLLATE "C") so that verify, repair and plan can merge it with the table read by a
// cursor ORDER BY key: neither side is ever held whole in memory (design.md §8, R7).
//
// The read spills sorted runs of at most `memory_budget` bytes to temporary files and merges them
// (an external sort); a snapshot that fits stays in memory. Entries with the same key keep the
// source's order, so a duplicate key is recognised as the producer recognises it (the first wins).
#pragma once

#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"

namespace leadsync::ctl {

struct SourceEntry {
  enum class Kind : uint8_t {
    kRecord,    // a mapped record: `event` is its image
    kRejected,  // a record the mapping rejected; its key is known, it is not compared
    kMaybeKey,  // a cell of a row the source could not parse: may be the key of a record kept as is
  };
  Kind kind = Kind::kRecord;
  std::string match_key;  // the table row it is compared with (the key, or the record its identity is linked to)
  uint64_t position = 0;  // where the source has it
  common::ChangeEvent event;  // kRecord; for kRejected only the key is set
  std::string reason;         // kRejected: why the mapping rejected it
};

struct SortedSourceOptions {
  std::size_t memory_budget = 64u << 20;  // bytes of entries held before a sorted run is spilled
  std::set<std::string> keys;             // only these source keys (empty: all)
};

class SortedSource {
 public:
  // Reads the whole snapshot now. `links` maps a key linked by an alternate key (R1) to the key of
  // the record it belongs to. Throws when the source cannot be read or mapped as a whole.
  SortedSource(const common::Config& config, const common::SourceConfig& source,
               const std::unordered_map<std::string, std::string>& links, SortedSourceOptions options = {});
  ~SortedSource();
  SortedSource(const SortedSource&) = delete;
  SortedSource& operator=(const SortedSource&) = delete;

  // The next entry in (match_key, position) order; false at the end.
  bool next(SourceEntry& out);

  int64_t records() const { return records_; }    // mapped records (duplicates included)
  int64_t rejected() const { return rejected_; }  // records the source could not parse or the mapping rejected
  int64_t spilled_runs() const { return static_cast<int64_t>(files_.size()); }

 private:
  struct Packed {
    std::string match_key;
    uint64_t position;
    std::string blob;  // kind byte + serialized event, or kind byte + key + '\0' + reason
  };
  struct Run;
  void add(SourceEntry::Kind kind, const std::string& match_key, uint64_t position, std::string blob);
  void spill();
  static void unpack(const Packed& p, SourceEntry& out);

  SortedSourceOptions options_;
  std::vector<Packed> buffer_;
  std::size_t buffered_bytes_ = 0;
  std::size_t next_in_buffer_ = 0;
  std::string dir_;
  std::vector<std::string> files_;
  std::vector<std::unique_ptr<Run>> runs_;
  int64_t records_ = 0, rejected_ = 0;
};

}  // namespace leadsync::ctl
