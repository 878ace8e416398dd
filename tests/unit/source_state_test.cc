// The producer's state load (issue 12, S2): the stored keys stream in as PostgreSQL's binary COPY
// and go into the key table without a lookup, their index slots prefetched. These tests need no
// server: they build the COPY bytes PostgreSQL sends and feed them in every split; the same load
// against the real database is in tests/integration/source_state_test.cc.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "producers/key_table.h"
#include "producers/source_state.h"

namespace leadsync::producers {
namespace {

void put16(std::string& out, int16_t v) {
  out += static_cast<char>((static_cast<uint16_t>(v) >> 8) & 0xff);
  out += static_cast<char>(static_cast<uint16_t>(v) & 0xff);
}
void put32(std::string& out, int32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((static_cast<uint32_t>(v) >> shift) & 0xff);
}
void put64(std::string& out, int64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>((static_cast<uint64_t>(v) >> shift) & 0xff);
}

// What `COPY (SELECT key, checksum ...) TO STDOUT (FORMAT binary)` sends: the header (with a header
// extension of `extension` bytes), one row per pair, the trailer.
std::string copy_bytes(const std::vector<std::pair<std::string, int64_t>>& rows, int extension = 0) {
  std::string out("PGCOPY\n\377\r\n\0", 11);
  put32(out, 0);
  put32(out, extension);
  out.append(static_cast<std::size_t>(extension), 'x');
  for (const auto& [key, checksum] : rows) {
    put16(out, 2);
    put32(out, static_cast<int32_t>(key.size()));
    out += key;
    put32(out, 8);
    put64(out, checksum);
  }
  put16(out, -1);
  return out;
}

// Keys that a text COPY would have escaped, and checksums across the whole int64 range (stored as
// bigint, so half of all checksums are negative there).
std::vector<std::pair<std::string, int64_t>> awkward_rows() {
  return {
      {"plain", 1},
      {"comma, and \"quotes\"", -1},
      {"back\\slash \\N \\.", std::numeric_limits<int64_t>::min()},
      {"new\nline\r\nand\ttab", std::numeric_limits<int64_t>::max()},
      {"Ünïcödé — 日本語 😀", -1234567890123456789},
      {std::string("nul\0inside", 10), 42},
      {"", 7},  // an empty key is a key
      {std::string(70'000, 'k'), -7},  // longer than a socket read
  };
}

// Every awkward key loaded is known with its checksum: observing it unchanged says so.
void expect_loaded(SourceState& state, const std::vector<std::pair<std::string, int64_t>>& rows) {
  ASSERT_EQ(state.known(), rows.size());
  std::size_t line = 2;
  for (const auto& [key, checksum] : rows) {
    std::size_t first = 0;
    EXPECT_EQ(state.observe(key, static_cast<uint64_t>(checksum), line++, first), SourceState::Seen::kUnchanged)
        << "key of " << key.size() << " bytes";
  }
  std::size_t first = 0;
  EXPECT_EQ(state.observe("plain ", 1, line++, first), SourceState::Seen::kNew);  // a near key is another key
  EXPECT_TRUE(state.vanished().empty());
}

TEST(SourceState, R9_TheBinaryCopyOfTheStoredKeysLoadsEveryKeyAndChecksumExactlyInAnySplit) {
  const auto rows = awkward_rows();
  const auto bytes = copy_bytes(rows, 5);
  {
    SourceState state;  // in one piece
    state.add_copy_data(bytes);
    state.end_copy_data();
    expect_loaded(state, rows);
  }
  {
    SourceState state;  // a byte at a time: the header, lengths and checksums cut everywhere
    for (const char c : bytes) state.add_copy_data(std::string_view(&c, 1));
    state.end_copy_data();
    expect_loaded(state, rows);
  }
  std::mt19937 random(12);
  for (int round = 0; round < 50; ++round) {
    SourceState state;
    for (std::size_t at = 0; at < bytes.size();) {
      const std::size_t n = std::min<std::size_t>(bytes.size() - at, random() % 40);
      state.add_copy_data(std::string_view(bytes).substr(at, n));
      at += n;
    }
    state.end_copy_data();
    expect_loaded(state, rows);
  }
}

TEST(SourceState, R9_AChangedChecksumAndAVanishedKeyAreToldApartAfterTheLoad) {
  SourceState state;
  state.add_copy_data(copy_bytes({{"a", -5}, {"b", 6}, {"c", 7}}));
  state.end_copy_data();
  std::size_t first = 0;
  EXPECT_EQ(state.observe("a", static_cast<uint64_t>(int64_t{-5}), 2, first), SourceState::Seen::kUnchanged);
  EXPECT_EQ(state.observe("b", 5, 3, first), SourceState::Seen::kChanged);
  EXPECT_EQ(state.observe("d", 1, 4, first), SourceState::Seen::kNew);
  EXPECT_EQ(state.observe("a", 1, 5, first), SourceState::Seen::kDuplicate);
  EXPECT_EQ(first, 2u);
  EXPECT_EQ(state.vanished(), std::vector<std::string>{"c"});
}

TEST(SourceState, R9_ASourceWithoutStoredKeysLoadsNone) {
  SourceState state;
  state.add_copy_data(copy_bytes({}));
  state.end_copy_data();
  EXPECT_EQ(state.known(), 0u);
  std::size_t first = 0;
  EXPECT_EQ(state.observe("a", 1, 2, first), SourceState::Seen::kNew);
  EXPECT_TRUE(state.vanished().empty());
}

TEST(SourceState, R9_CopyDataThatIsCutShortOrMalformedFailsTheLoad) {
  const auto bytes = copy_bytes({{"a", 1}, {"b", 2}});
  {
    SourceState state;  // cut before the trailer
    state.add_copy_data(std::string_view(bytes).substr(0, bytes.size() - 2));
    EXPECT_THROW(state.end_copy_data(), std::runtime_error);
  }
  {
    SourceState state;  // cut inside a row
    state.add_copy_data(std::string_view(bytes).substr(0, bytes.size() - 5));
    EXPECT_THROW(state.end_copy_data(), std::runtime_error);
  }
  {
    SourceState state;  // not binary COPY at all (a text COPY line)
    EXPECT_THROW(state.add_copy_data("a\t1\nb\t2\nc\t3\n\\.\n"), std::runtime_error);
  }
  {
    SourceState state;  // three columns
    std::string wrong = bytes.substr(0, 19);
    put16(wrong, 3);
    EXPECT_THROW(state.add_copy_data(wrong + std::string(40, '\0')), std::runtime_error);
  }
  {
    SourceState state;  // a NULL key
    std::string wrong = bytes.substr(0, 19);
    put16(wrong, 2);
    put32(wrong, -1);
    EXPECT_THROW(state.add_copy_data(wrong + std::string(20, '\0')), std::runtime_error);
  }
  {
    SourceState state;  // data after the trailer
    EXPECT_THROW(state.add_copy_data(bytes + bytes.substr(19)), std::runtime_error);
  }
}

TEST(KeyTable, R9_KeysInsertedAsAbsentAreFoundAfterGrowthAndAfterTheirDeferredPlacement) {
  // Without reserve(): the index grows (and re-hashes) while keys are still waiting for their slot.
  KeyTable t;
  for (int i = 0; i < 50'000; ++i) {
    const auto id = t.insert_absent("key-" + std::to_string(i));
    ASSERT_EQ(id, static_cast<KeyTable::Id>(i));
    t.at(id).checksum = static_cast<uint64_t>(i) * 3;
  }
  EXPECT_THROW(t.find("key-1"), std::logic_error);  // not before the last keys are placed
  t.finish_absent();
  for (int i = 0; i < 50'000; ++i) {
    const auto key = "key-" + std::to_string(i);
    const auto id = t.find(key);
    ASSERT_EQ(id, static_cast<KeyTable::Id>(i)) << key;
    EXPECT_EQ(t.at(id).checksum, static_cast<uint64_t>(i) * 3);
  }
  bool inserted = true;
  EXPECT_EQ(t.find_or_insert("key-49999", inserted), 49'999u);
  EXPECT_FALSE(inserted);
  EXPECT_EQ(t.find("key-50000"), KeyTable::kNone);
  // find_or_insert places what insert_absent left pending before it looks.
  t.insert_absent("late");
  EXPECT_EQ(t.find_or_insert("late", inserted), 50'000u);
  EXPECT_FALSE(inserted);
  EXPECT_EQ(t.size(), 50'001u);
}

TEST(KeyTable, R9_AReservedTableTakesThatManyKeysWithoutGrowing) {
  KeyTable t;
  t.reserve(100'000, 100'000 * 10);
  const auto reserved = t.memory_bytes();
  for (int i = 0; i < 100'000; ++i) t.insert_absent("key-" + std::to_string(i));
  t.finish_absent();
  EXPECT_EQ(t.memory_bytes(), reserved);
  for (int i = 0; i < 100'000; i += 997) EXPECT_EQ(t.find("key-" + std::to_string(i)), static_cast<KeyTable::Id>(i));
  bool inserted = false;
  t.find_or_insert("one more", inserted);  // a hint, not a limit
  EXPECT_TRUE(inserted);
  EXPECT_EQ(t.find("one more"), 100'000u);
}

TEST(KeyTable, R9_PrefetchHintsChangeNothingWhateverTheyName) {
  KeyTable t;
  for (int step = 0; step < 3; ++step) t.prefetch("nothing yet", step);  // an empty table
  bool inserted = false;
  for (int i = 0; i < 5'000; ++i) t.find_or_insert("key-" + std::to_string(i), inserted);
  for (int i = 0; i < 10'000; ++i) {  // present and absent keys, every step, in any order
    for (int step = 2; step >= 0; --step) t.prefetch("key-" + std::to_string(i), step);
  }
  for (int i = 0; i < 10'000; ++i) {
    EXPECT_EQ(t.find("key-" + std::to_string(i)), i < 5'000 ? static_cast<KeyTable::Id>(i) : KeyTable::kNone);
  }
  EXPECT_EQ(t.size(), 5'000u);
}

}  // namespace
}  // namespace leadsync::producers
