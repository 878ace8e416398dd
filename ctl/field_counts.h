// Field-level counts of a run (R6), for `leadsyncctl status --fields`: per mapped field, how many
// applied events wrote it (every mapped field is written on every applied event), how many rows it
// changed (the audit, leadsync.field_changes, by run) and how many records the producer rejected
// because of that field's column (leadsync.run_errors). Labels are the mapping's fields only.
#pragma once

#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/runs.h"

namespace leadsync::ctl {

struct FieldCount {
  std::string field;
  int64_t applied = 0;
  int64_t changed = 0;  // -1: the entity is not audited
  int64_t rejected = 0;
};

std::vector<FieldCount> field_counts(pqxx::transaction_base& tx, const common::Config& config,
                                     const common::SourceConfig& source, const std::string& run_id,
                                     const common::AppliedCounts& applied);
std::string format_field_counts(const std::vector<FieldCount>& counts);  // one line, two-space indent
nlohmann::json field_counts_json(const std::vector<FieldCount>& counts);

}  // namespace leadsync::ctl
