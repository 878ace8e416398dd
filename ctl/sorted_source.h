// A source's snapshot, mapped exactly as the producer maps it, delivered in key order (byte order,
// PostgreSQL's COLLATE "C") so that verify, repair and plan can merge it with the table read in
// ORDER BY key COLLATE "C": neither side is ever held whole in memory (design.md §8, R7).
//
// Each entry is held in a flat encoding (below): the match key, the position, and each field's
// typed value as plain bytes, so that neither building the runs nor reading them back goes through
// a serialized protobuf image. The read collects entries in a buffer of at most `memory_budget`
// bytes; a full buffer is sorted (unless it already is) and spilled to a temporary file; the runs
// and the last buffer, still in memory, are then merged. A buffer that is already in key order and
// continues the run before it is appended to that run unsorted, so a source that is in key order
// (a sheet sorted by its key) costs one check per entry and one sequential write and read, no sort.
// Entries with the same key keep the source's order, so a duplicate key is recognised as the
// producer recognises it (the first wins).
//
// Flat encoding of one entry (integers little-endian, "v" = LEB128 varint):
//   u32 size (bytes after it) | u32 match-key length | match key | u64 position | u8 kind | payload
//   kRecord:   u8 flags (1: key differs from the match key, then v+key; 2: event metadata other than
//              what the mapper sets, then v+serialized event without key and fields) | u64 checksum |
//              u16 field count | per field: u16 index of the entity's field (0xFFFF: v+name) | value
//   kRejected: v+key | v+reason          kMaybeKey: v+key
//   value:     u8 Value::KindCase, then null/bool: u8; int, double, timestamp: 8 bytes;
//              string, json: v+bytes; string_list: v count, then v+bytes per item
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"
#include "producers/source.h"

namespace leadsync::producers {
class Mapper;
}  // namespace leadsync::producers

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

// One field's value in an entry, decoded in place (views into the entry's bytes).
struct FlatValue {
  static constexpr uint8_t kAbsent = 0xFF;  // the event has no such field
  uint8_t kind = kAbsent;                   // a common::Value::KindCase, or kAbsent
  int64_t number = 0;   // null (the flag), bool, int, timestamp; string_list: the item count
  double real = 0;      // double
  std::string_view bytes;  // string, json; string_list: the encoded items
};

// The Value a decoded field holds (a kAbsent field: a Value with no kind set).
common::Value to_value(const FlatValue& v);

// One entry decoded in place: views into its encoded bytes, valid while those bytes are.
struct FlatEntry {
  SourceEntry::Kind kind = SourceEntry::Kind::kRecord;
  std::string_view match_key, key, reason;
  uint64_t position = 0;
  std::vector<FlatValue> values;  // kRecord: per field of the entity, in declaration order
  std::string_view encoded;       // the whole entry
};

struct SortedSourceOptions {
  std::size_t memory_budget = 64u << 20;  // bytes of entries held before a sorted run is spilled
  std::set<std::string> keys;             // only these source keys (empty: all)
  // Deliver the entries as the source is read, in its own order, holding and spilling nothing;
  // next_encoded() throws NotInKeyOrder at the first entry that comes before the one it follows
  // (the caller then starts again without this option). For a source that is in key order.
  bool stream = false;
};

struct NotInKeyOrder : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class SortedSource {
 public:
  // Reads the whole snapshot now (with `stream`: as next_encoded() asks). `links` maps a key linked by an alternate key (R1) to the key of
  // the record it belongs to. Throws when the source cannot be read or mapped as a whole.
  SortedSource(const common::Config& config, const common::SourceConfig& source,
               const std::unordered_map<std::string, std::string>& links, SortedSourceOptions options = {});
  ~SortedSource();
  SortedSource(const SortedSource&) = delete;
  SortedSource& operator=(const SortedSource&) = delete;

  // The next entry in (match_key, position) order; false at the end.
  bool next(SourceEntry& out);
  // The same, encoded: valid until the next call. decode() and image() read it.
  bool next_encoded(std::string_view& entry);
  void decode(std::string_view entry, FlatEntry& out) const { decode(*entity_, entry, out); }
  void image(std::string_view entry, common::ChangeEvent& out) const { image(*entity_, source_name_, entry, out); }
  static std::string_view match_key(std::string_view entry);

  // Both final once next_encoded() returned false (with `stream`), else from construction.
  int64_t records() const { return records_; }    // mapped records (duplicates included)
  int64_t rejected() const { return rejected_; }  // records the source could not parse or the mapping rejected
  int64_t spilled_runs() const { return static_cast<int64_t>(files_.size()); }
  bool sorted_on_read() const { return sorted_on_read_; }  // no entry arrived out of key order

  // The flat encoding alone (tests): decodes an entry; the record's event, as mapped; appends one entry.
  static void decode(const common::EntityConfig& entity, std::string_view entry, FlatEntry& out);
  static void image(const common::EntityConfig& entity, const std::string& source_name, std::string_view entry,
                    common::ChangeEvent& out);
  static void encode_record(const common::EntityConfig& entity, const std::string& source_name,
                            const std::string& match_key, uint64_t position, const common::ChangeEvent& event,
                            std::string& out);

 private:
  struct Index {
    uint64_t offset;
    uint32_t size;  // the whole entry
  };
  class Run;
  bool read_record();                 // one record of the source into the buffer; false at its end
  void add_entry(std::size_t start);  // the entry encoded at arena_[start..]
  void spill();
  std::string_view entry_at(const Index& i) const { return {arena_.data() + i.offset, i.size}; }

  SortedSourceOptions options_;
  const common::EntityConfig* entity_ = nullptr;
  const std::unordered_map<std::string, std::string>* links_ = nullptr;
  std::unique_ptr<producers::SourceAdapter> adapter_;
  std::unique_ptr<producers::Mapper> mapper_;
  std::unique_ptr<common::ChangeEvent> event_;  // reused per record
  producers::SourceRecord record_;
  producers::RowError row_error_;
  std::size_t streamed_ = 0;                    // with `stream`: entries of the buffer already delivered
  std::string source_name_;
  std::string arena_;          // encoded entries of the buffer, in arrival order
  std::vector<Index> index_;   // the buffer's entries (sorted before use)
  bool buffer_sorted_ = true;  // index_ is in (match_key, position) order as it stands
  bool sorted_on_read_ = true;
  std::string run_last_;       // the last entry written to the open run file
  std::string dir_;
  std::vector<std::string> files_;
  int open_fd_ = -1;  // the run file being written
  std::vector<std::unique_ptr<Run>> runs_;
  Run* last_ = nullptr;  // the run whose head next_encoded() gave last
  int64_t records_ = 0, rejected_ = 0;
};

}  // namespace leadsync::ctl
