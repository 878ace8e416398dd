// Conflict rules of the reverse direction (design.md §9, R11): for a PostgreSQL change of a record
// the CRM already has, which fields PostgreSQL's value wins. Last-write-wins on source version
// (PostgreSQL's _version against the CRM's updatedAt), unless configuration gives the field to one
// side for good (reverse.priority). Pure: the target applies the decisions and audits them.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"

namespace leadsync::workers {

enum class Side { kPostgres, kCrm };

struct FieldDecision {
  std::string field;  // entity field
  std::string path;   // CRM field path
  nlohmann::json postgres_value;
  nlohmann::json crm_value;
  Side winner = Side::kPostgres;
  common::FieldPriority rule = common::FieldPriority::kLastWriteWins;  // what decided it
};

// One decision per mapped field whose values differ; fields the event does not carry are left out.
std::vector<FieldDecision> decide_fields(const common::ReverseConfig& reverse, const common::ChangeEvent& event,
                                         const nlohmann::json& crm_record, int64_t crm_version);

const char* side_name(Side s) noexcept;

}  // namespace leadsync::workers
