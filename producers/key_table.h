// The producer's per-key state in memory (issue 12): a compact key → entry table for millions of
// keys. Keys live back to back in one byte arena, entries in one array in insertion order, and an
// open-addressing index (linear probing, power-of-two size, at most half full) maps a key's hash to
// its entry: no heap allocation per key, 24 bytes per entry, 4 per index slot, plus the key's bytes.
// Entries are addressed by a stable 32-bit id.
// Keys are never removed (a run only adds and marks them).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace leadsync::producers {

class KeyTable {
 public:
  struct Entry {  // 24 bytes
    uint64_t checksum = 0;
    uint64_t key_at : 40 = 0;    // offset of the key's bytes in the arena
    uint64_t key_size : 24 = 0;  // a key is at most 16 MiB - 1
    uint32_t first_line = 0;
    uint32_t hash : 28 = 0;  // bits of the key's hash: compared before the bytes
    uint32_t known : 1 = 0;    // stored by a previous run
    uint32_t seen : 1 = 0;     // present in this snapshot
    uint32_t changed : 1 = 0;  // new or changed: its checksum is written when the run completes
    uint32_t deleted : 1 = 0;  // deleted by an incremental read
  };
  using Id = uint32_t;
  static constexpr Id kNone = UINT32_MAX;

  // The key's entry, created empty if absent; `inserted` says which.
  Id find_or_insert(std::string_view key, bool& inserted);
  // A new entry for a key the caller knows is not in the table (the stored state's keys, unique by
  // their primary key), for loading many: only the index is probed, for a free slot, never an entry
  // or a key's bytes; and the key enters the index kAhead keys later, its slot prefetched meanwhile
  // (at a million keys the index is megabytes, and each slot's cache miss was most of the load).
  // Until finish_absent() the keys added last are not found.
  Id insert_absent(std::string_view key);
  void finish_absent();
  // Room for `keys` keys of `key_bytes` bytes in all without growing (a hint: more still fit).
  void reserve(std::size_t keys, std::size_t key_bytes = 0);
  Id find(std::string_view key) const;

  Entry& at(Id id) { return entries_[id]; }
  const Entry& at(Id id) const { return entries_[id]; }
  std::string_view key(Id id) const { return {arena_.data() + entries_[id].key_at, entries_[id].key_size}; }
  std::size_t size() const { return entries_.size(); }

  // Hints that `key` is looked up soon, in three steps a few keys apart (each needs what the one
  // before brought into the cache): its index slot, then the entry the slot names, then that
  // entry's key bytes. Nothing changes; a wrong or stale hint only costs a useless prefetch.
  void prefetch(std::string_view key, int step) const;

  // Bytes held (arena, entries, index): the state's memory, for reports.
  std::size_t memory_bytes() const;

 private:
  static uint64_t hash_of(std::string_view key);
  void grow();
  void rebuild_index(std::size_t slots);
  Id append(std::string_view key, uint32_t tag, std::size_t slot);
  Id append_unindexed(std::string_view key, uint32_t tag);

  std::vector<char> arena_;
  std::vector<Entry> entries_;
  std::vector<Id> index_;  // kNone: empty slot
  std::size_t mask_ = 0;
  // insert_absent's keys not yet in the index: entry and index slot, in a ring.
  static constexpr std::size_t kAhead = 16;
  struct Pending {
    Id id;
    std::size_t slot;
  };
  Pending pending_[kAhead] = {};
  std::size_t pending_at_ = 0, pending_count_ = 0;
  void place(const Pending& p);
};

}  // namespace leadsync::producers
