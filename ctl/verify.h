// leadsyncctl verify (design.md §8, R7): reads a source's snapshot through the same mapping as the
// producer and compares it with PostgreSQL field by field.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::ctl {

struct FieldDrift {
  int64_t count = 0;
  std::vector<std::string> sample_keys;  // up to 5
};

struct VerifyReport {
  std::string source;
  int64_t source_records = 0;    // mapped records in the snapshot
  int64_t rejected_records = 0;  // records the mapping rejects (not compared)
  int64_t database_records = 0;  // live rows of this source in the table
  int64_t matching = 0;
  int64_t missing_in_database = 0;  // in the source, absent or deleted in the table
  int64_t extra_in_database = 0;    // live in the table from this source, gone from the source
  std::vector<std::string> missing_samples, extra_samples;
  std::map<std::string, FieldDrift> fields;  // field -> records whose value differs

  bool drift() const { return missing_in_database || extra_in_database || !fields.empty(); }
};

VerifyReport verify_source(const common::Config& config, const common::SourceConfig& source);
std::string format_report(const VerifyReport& r);

}  // namespace leadsync::ctl
