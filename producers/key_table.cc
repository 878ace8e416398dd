#include "producers/key_table.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace leadsync::producers {

uint64_t KeyTable::hash_of(std::string_view key) { return XXH3_64bits(key.data(), key.size()); }

KeyTable::Id KeyTable::find(std::string_view key) const {
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
  if (entries_.size() >= kNone - 1) throw std::length_error("key table: more than 4 billion keys");
  if (key.size() >= (std::size_t{1} << 24)) throw std::length_error("key table: a key of 16 MiB or more");
  inserted = true;
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
  index_[slot] = id;
  return id;
}

void KeyTable::grow() {
  const std::size_t size = index_.empty() ? 1024 : index_.size() * 2;
  index_.assign(size, kNone);
  mask_ = size - 1;
  for (Id id = 0; id < entries_.size(); ++id) {
    const auto h = hash_of(key(id));
    std::size_t slot = h & mask_;
    while (index_[slot] != kNone) slot = (slot + 1) & mask_;
    index_[slot] = id;
  }
}

std::size_t KeyTable::memory_bytes() const {
  return arena_.capacity() + entries_.capacity() * sizeof(Entry) + index_.capacity() * sizeof(Id);
}

}  // namespace leadsync::producers
static_assert(sizeof(leadsync::producers::KeyTable::Entry) == 24);
