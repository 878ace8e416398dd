// Maps a source's raw records onto an entity (design.md §3 "map"): renames columns to fields,
// coerces types, normalises, and rejects what cannot be coerced with an error that names the
// source, the record's position, the column and the value (R2). Every mapped field is set on every
// event, so no field is ever silently skipped (R6).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"
#include "producers/source.h"

namespace leadsync::producers {

class Mapper {
 public:
  // Resolves the mapped columns against the snapshot's columns. Throws std::runtime_error naming
  // every missing or ambiguous mapped column: syncing without one would null that field everywhere.
  Mapper(const common::SourceConfig& source, const common::EntityConfig& entity, const SourceAdapter& snapshot);

  // Source columns that no field maps (reported once per run).
  const std::vector<std::string>& unmapped_columns() const { return unmapped_; }

  // Fills `event` (fields, key, entity, op=UPSERT, checksum) from `record`; every other field of the
  // event is cleared. Reusing one event for many records saves its allocations. Returns false and fills
  // `error` when the record cannot be mapped; the first failing column is reported.
  // Text cells are coerced by the field's rules; typed values are checked against the field (a
  // string value is read like a text cell; a list field's coerce rule decides what a single string,
  // NULL or an absent value becomes).
  bool map(const SourceRecord& record, common::ChangeEvent& event, RowError& error) const;
  // The same, for an event reused with `slots` (kept beside it, empty at first): where each mapped
  // column's value sits in the event's field map, so that a reused event's fields are set and
  // checksummed without a map lookup. Only this mapper may touch the event's fields between calls.
  bool map(const SourceRecord& record, common::ChangeEvent& event, RowError& error,
           std::vector<common::Value*>& slots) const;

  // The clock of the entity's rules (age_days): the run's start, so that one run scores every record
  // against the same instant. Defaults to the construction time.
  void set_clock(int64_t now_micros) { now_micros_ = now_micros; }

  // True when the record has no non-blank cell (a blank line in a sheet) and names no key.
  static bool is_blank(const SourceRecord& record);

 private:
  struct Column {
    std::size_t index;
    std::string name;
    const common::FieldConfig* field;  // null for the key column
  };
  const common::SourceConfig& source_;
  const common::EntityConfig& entity_;
  std::vector<Column> columns_;
  std::size_t key_index_ = 0;
  std::vector<std::string> unmapped_;
  std::vector<std::string> sorted_names_;  // the fields of a mapped event, sorted (the checksum's order)
  // Text records of a mapping without rules whose columns map to distinct fields: map() can keep
  // slots; `by_name_` lists the columns in their fields' name order.
  bool slots_usable_ = false;
  std::vector<std::size_t> by_name_;
  bool map_into(const SourceRecord& record, common::ChangeEvent& event, RowError& error,
                std::vector<common::Value*>* slots) const;
  int64_t now_micros_ = 0;
};

}  // namespace leadsync::producers
