// leadsyncctl plan SOURCE (design.md §8): a dry run of the source's next run. It reads and maps the
// snapshot and diffs it against the stored per-key checksums with the producer's own code
// (producers::Mapper, producers::SourceState) and guardrail rules, so it predicts what the next run
// publishes: which records it inserts, updates (and which fields, compared with PostgreSQL) and
// deletes, and whether a guardrail stops it. It publishes nothing and writes nothing.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "ctl/verify.h"

namespace leadsync::ctl {

struct Plan {
  std::string source;
  std::string full_publish_reason;  // non-empty: the next run publishes every record, and why
  int64_t rows_read = 0;
  int64_t inserts = 0, updates = 0, deletes = 0, unchanged = 0, rejected = 0;
  std::vector<std::string> insert_keys, update_keys, delete_keys;  // every key, sorted
  std::map<std::string, FieldDrift> update_fields;  // field -> updated records whose value there differs from PostgreSQL
  std::string guardrail;  // empty: the run would complete; else why it would fail or delete nothing
  bool run_fails = false;
  std::vector<std::string> warnings;
};

Plan plan_source(const common::Config& config, const common::SourceConfig& source, std::size_t samples = 5);
std::string format_plan(const Plan& p, std::size_t samples = 5);
std::string plan_json(const Plan& p, std::size_t samples = 5);

}  // namespace leadsync::ctl
