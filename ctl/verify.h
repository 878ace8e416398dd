// leadsyncctl verify (design.md §8, R7): reads a source's snapshot through the same mapping as the
// producer and compares it with PostgreSQL field by field. Both sides stream in key order and meet
// in a merge join (ctl/sorted_source.h: the mapped source in flat sorted runs; ctl/table_cursor.h
// TableStream: one COPY … ORDER BY key COLLATE "C" read in a thread of its own while the source is
// mapped), so memory stays bounded whatever the size of the source.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"

namespace leadsync::ctl {

struct FieldDrift {
  int64_t count = 0;
  std::vector<std::string> sample_keys;  // up to VerifyOptions::samples
};

struct VerifyOptions {
  std::vector<std::string> fields;  // compare only these (empty: every mapped field)
  std::set<std::string> keys;       // only these source keys (empty: the whole source)
  std::size_t samples = 5;          // sample keys kept per finding
  std::size_t memory_budget = 64u << 20;
};

struct VerifyReport {
  std::string source;
  int64_t source_records = 0;    // mapped records in the snapshot
  int64_t rejected_records = 0;  // records the source could not parse or the mapping rejects (not compared)
  int64_t database_records = 0;  // live rows of this source in the table
  int64_t matching = 0;
  int64_t missing_in_database = 0;  // in the source, no row in the table
  int64_t deleted_in_database = 0;  // in the source, a tombstone (_deleted) in the table
  int64_t extra_in_database = 0;    // live in the table from this source, gone from the source
  std::vector<std::string> missing_samples, deleted_samples, extra_samples;
  std::map<std::string, FieldDrift> fields;  // field -> records whose value differs

  bool drift() const {
    return missing_in_database || deleted_in_database || extra_in_database || !fields.empty();
  }
};

// One drifted record, as the merge meets it (repair acts on these).
struct Drift {
  enum class Kind { kFields, kMissing, kDeleted, kExtra };
  Kind kind = Kind::kFields;
  std::string key;      // the source's key (kExtra: the table's)
  std::string row_key;  // the table row it meets ("" for kMissing)
  std::vector<std::string> fields;          // kFields: the fields that differ
  const common::ChangeEvent* image = nullptr;  // the source's current image (not kExtra)
  int64_t row_version = 0;                     // the row's _version (0 for kMissing)
};
using DriftVisitor = std::function<void(const Drift&)>;

VerifyReport verify_source(const common::Config& config, const common::SourceConfig& source,
                           const VerifyOptions& options = {}, const DriftVisitor& visit = {});
std::string format_report(const VerifyReport& r);
std::string report_json(const VerifyReport& r);  // one line

}  // namespace leadsync::ctl
