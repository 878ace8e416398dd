// The one small interface every source adapter implements (design.md §3): read a snapshot as a
// stream of raw records. Mapping, diffing and publishing are shared code (mapper.h, sync_run.h).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace leadsync::producers {

struct RawRecord {
  std::size_t position = 0;        // where the record is in the source: the CSV line, the sheet row
  std::vector<std::string> cells;  // in the order of SourceAdapter::columns(); may be shorter (ragged)
};

class SourceAdapter {
 public:
  virtual ~SourceAdapter() = default;

  // Fetches the snapshot and returns a hash of its raw content (an unchanged snapshot is
  // recognised by this one value without parsing it).
  virtual std::string open() = 0;
  // Column names of the snapshot, after open().
  virtual const std::vector<std::string>& columns() const = 0;
  // Problems with the columns themselves (empty or duplicate header cells), after open().
  virtual std::vector<std::string> column_warnings() const = 0;
  // Names that appear more than once among columns(); a mapped one is ambiguous.
  virtual bool is_duplicate_column(const std::string& name) const = 0;
  // The next record; false at the end. A malformed record is still returned, with `error` set.
  virtual bool next(RawRecord& out, std::optional<std::string>& error) = 0;
  // Fraction of the snapshot read so far, for progress reporting.
  virtual double progress() const = 0;
};

}  // namespace leadsync::producers
