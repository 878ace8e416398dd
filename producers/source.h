// The one interface every source adapter implements (design.md §3): read the source as a stream of
// records. Mapping, diffing, guardrails and publishing are shared code (mapper.h, sync_run.h); an
// adapter only knows how to read its source. Adapters are chosen by kind in registry.h.
//
// Two shapes of record, one interface:
//  - text sources (CSV, a Sheets range as formatted strings) deliver cells as text, which the
//    mapper coerces by each field's rules;
//  - typed sources (Firestore's typed values, Twenty's JSON) deliver wire Values, which the mapper
//    checks against each field (common::check_value) instead of printing and re-parsing them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/mapping.h"

namespace leadsync::producers {

enum class CellKind { kText, kTyped };
enum class RecordOp { kUpsert, kDelete };

struct SourceRecord {
  std::size_t position = 0;  // where the record is in the source (CSV line, sheet row, n-th document)
  CellKind kind = CellKind::kText;
  // In the order of SourceAdapter::columns(); may be shorter (ragged rows, absent fields).
  std::vector<std::string> cells;     // kText
  std::vector<common::Value> values;  // kTyped; a value with no kind set is an absent field
  // The record's key when the source names it outside the columns (a Firestore document id, a
  // change feed's delete); empty: the mapper reads the key column.
  std::string key;
  // The source's own version of the record (Firestore updateTime, Twenty updatedAt), in
  // microseconds; nullopt when the source has none and the run's version is used.
  std::optional<int64_t> source_version;
  RecordOp op = RecordOp::kUpsert;  // kDelete only from changes_since()
};

// A record that could not be read or mapped (R2): where, which key and column, the value, and why.
struct RowError {
  std::size_t position = 0;
  std::string key;     // empty when the key itself is missing
  std::string column;  // source column, empty when the error is about the whole record
  std::string value;
  std::string message;
};

// Where an interrupted or incremental read continues: opaque to everyone but its adapter (a row
// number, a page token, an updatedAt cursor), stored with the run and the source's state.
struct Checkpoint {
  std::string value;
};

class SourceAdapter {
 public:
  virtual ~SourceAdapter() = default;

  // Starts a full read of the source. Returns a fingerprint of the snapshot's raw content when the
  // source can produce one cheaply (an unchanged snapshot is then recognised without parsing it),
  // else an empty string.
  virtual std::string open() = 0;
  // Column (field path) names of the records, after open().
  virtual const std::vector<std::string>& columns() const = 0;
  // Problems with the columns themselves (empty or duplicate header cells), after open().
  virtual std::vector<std::string> column_warnings() const = 0;
  // Names that appear more than once among columns(); a mapped one is ambiguous.
  virtual bool is_duplicate_column(const std::string& name) const = 0;
  // The next record; false at the end. A malformed record is still returned, with `error` set.
  // Throws when the read as a whole cannot be trusted (a broken download, a file that ends inside
  // a quoted cell): the run fails instead of mistaking the missing rest for deletions.
  virtual bool next(SourceRecord& out, std::optional<std::string>& error) = 0;
  // Fraction of the read done so far, for progress reporting.
  virtual double progress() const = 0;

  // Incremental sources: reads only what changed after `cursor` (deletes as RecordOp::kDelete)
  // instead of open(); records missing from such a read are not deletions. false: not supported.
  virtual bool changes_since(const Checkpoint& /*cursor*/) { return false; }
  // Resumable sources: where the read stands now (records before it were all returned), to store
  // with the run; nullopt when the source cannot resume.
  virtual std::optional<Checkpoint> checkpoint() const { return std::nullopt; }
  // Continues a read interrupted at `from` (instead of open()). false: not supported.
  virtual bool resume(const Checkpoint& /*from*/) { return false; }
};

}  // namespace leadsync::producers
