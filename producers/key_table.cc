#include "producers/key_table.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace leadsync::producers {

uint64_t KeyTable::hash_of(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

KeyTable::Id KeyTable::find(std::string_view key) const {
  if (pending_count_ != 0) throw std::logic_error("KeyTable::find before finish_absent()");
  if (index_.empty()) return kNone;
  const auto h = hash_of(key);
  const auto tag = static_cast<uint32_t>(h >> 36);
  for (std::size_t slot = h & mask_;; slot = (slot + 1) & mask_) {
    const Id id = index_[slot];
    if (id == kNone) return kNone;
    const Entry& e = entries_[id];
    if (e.hash == tag && e.key_size == key.size() && std::memcmp(arena_.data() + e.key_at, key.data(), key.size()) == 0) {
      return id;
    }
  }
}

KeyTable::Id KeyTable::find_or_insert(std::string_view key, bool& inserted) {
  if (pending_count_ != 0) finish_absent();
  if ((entries_.size() + 1) * 2 > index_.size()) grow();
  const auto h = hash_of(key);
  const auto tag = static_cast<uint32_t>(h >> 36);
  std::size_t slot = h & mask_;
  for (;; slot = (slot + 1) & mask_) {
    const Id id = index_[slot];
    if (id == kNone) break;
    const Entry& e = entries_[id];
    if (e.hash == tag && e.key_size == key.size() && std::memcmp(arena_.data() + e.key_at, key.data(), key.size()) == 0) {
      inserted = false;
      return id;
    }
  }
  inserted = true;
  return append(key, tag, slot);
}

KeyTable::Id KeyTable::insert_absent(std::string_view key) {
  if ((entries_.size() + 1) * 2 > index_.size()) grow();
  const auto h = hash_of(key);
  const Pending p{append_unindexed(key, static_cast<uint32_t>(h >> 36)), h & mask_};
  __builtin_prefetch(&index_[p.slot], 1);
  if (pending_count_ == kAhead) {
    place(pending_[pending_at_]);
    pending_[pending_at_] = p;
    pending_at_ = (pending_at_ + 1) % kAhead;
  } else {
    pending_[(pending_at_ + pending_count_++) % kAhead] = p;
  }
  return p.id;
}

void KeyTable::finish_absent() {
  for (; pending_count_ > 0; --pending_count_) {
    place(pending_[pending_at_]);
    pending_at_ = (pending_at_ + 1) % kAhead;
  }
  pending_at_ = 0;
}

void KeyTable::place(const Pending& p) {
  std::size_t slot = p.slot;
  while (index_[slot] != kNone) slot = (slot + 1) & mask_;
  index_[slot] = p.id;
}

KeyTable::Id KeyTable::append(std::string_view key, uint32_t tag, std::size_t slot) {
  const Id id = append_unindexed(key, tag);
  index_[slot] = id;
  return id;
}

KeyTable::Id KeyTable::append_unindexed(std::string_view key, uint32_t tag) {
  if (entries_.size() >= kNone - 1) throw std::length_error("key table: more than 4 billion keys");
  if (key.size() >= (std::size_t{1} << 24)) throw std::length_error("key table: a key of 16 MiB or more");
  // Growth by half, not doubling: at 10 million keys the spare capacity is most of the table.
  if (entries_.size() == entries_.capacity()) entries_.reserve(entries_.capacity() + entries_.capacity() / 2 + 1024);
  if (arena_.size() + key.size() > arena_.capacity()) {
    arena_.reserve(std::max(arena_.size() + key.size(), arena_.capacity() + arena_.capacity() / 2 + 65536));
  }
  const Id id = static_cast<Id>(entries_.size());
  Entry& e = entries_.emplace_back();
  e.key_at = arena_.size();
  e.key_size = static_cast<uint32_t>(key.size());
  e.hash = tag;
  arena_.insert(arena_.end(), key.begin(), key.end());
  return id;
}

void KeyTable::reserve(std::size_t keys, std::size_t key_bytes) {
  if (keys > entries_.capacity()) entries_.reserve(keys);
  if (key_bytes > arena_.capacity()) arena_.reserve(key_bytes);
  std::size_t slots = index_.empty() ? 1024 : index_.size();
  while (slots < 2 * keys) slots *= 2;  // at most half full, as grow() keeps it
  if (slots > index_.size()) rebuild_index(slots);
}

void KeyTable::grow() { rebuild_index(index_.empty() ? 1024 : index_.size() * 2); }

void KeyTable::rebuild_index(std::size_t size) {
  pending_count_ = 0;  // the new index holds every entry, insert_absent's pending ones too
  pending_at_ = 0;
  index_.assign(size, kNone);
  mask_ = size - 1;
  for (Id id = 0; id < entries_.size(); ++id) {
    const auto h = hash_of(key(id));
    std::size_t slot = h & mask_;
    while (index_[slot] != kNone) slot = (slot + 1) & mask_;
    index_[slot] = id;
  }
}

void KeyTable::prefetch(std::string_view key, int step) const {
  if (index_.empty()) return;
  const std::size_t slot = hash_of(key) & mask_;
  if (step == 0) {
    __builtin_prefetch(&index_[slot]);
    return;
  }
  const Id id = index_[slot];
  if (id == kNone) return;
  if (step == 1) {
    __builtin_prefetch(&entries_[id]);
  } else {
    __builtin_prefetch(arena_.data() + entries_[id].key_at);
  }
}

std::size_t KeyTable::memory_bytes() const {
  return arena_.capacity() + entries_.capacity() * sizeof(Entry) + index_.capacity() * sizeof(Id);
}

}  // namespace leadsync::producers
static_assert(sizeof(leadsync::producers::KeyTable::Entry) == 24);
