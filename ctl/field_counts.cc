#include "ctl/field_counts.h"

#include <map>

namespace leadsync::ctl {

std::vector<FieldCount> field_counts(pqxx::transaction_base& tx, const common::Config& config,
                                     const common::SourceConfig& source, const std::string& run_id,
                                     const common::AppliedCounts& applied) {
  const auto& entity = config.entity(source.entity);
  std::map<std::string, int64_t> changed, rejected;
  if (entity.audit) {
    for (const auto& r : tx.exec_params("SELECT field, count(*) FROM leadsync.field_changes WHERE run_id = $1 "
                                        "GROUP BY field",
                                        run_id)) {
      changed[r[0].as<std::string>()] = r[1].as<int64_t>();
    }
  }
  std::map<std::string, std::string> field_of_column;
  for (const auto& [column, field] : source.columns) field_of_column[column] = field;
  for (const auto& r : tx.exec_params("SELECT column_name, count(*) FROM leadsync.run_errors WHERE run_id = $1 AND "
                                      "column_name IS NOT NULL GROUP BY column_name",
                                      run_id)) {
    const auto it = field_of_column.find(r[0].as<std::string>());
    if (it != field_of_column.end()) rejected[it->second] += r[1].as<int64_t>();
  }
  std::vector<FieldCount> out;
  for (const auto& f : entity.fields) {
    out.push_back({f.name, applied.inserted + applied.updated + applied.unchanged,
                   entity.audit ? changed[f.name] : -1, rejected[f.name]});
  }
  return out;
}

std::string format_field_counts(const std::vector<FieldCount>& counts) {
  std::string out = "  fields (applied/changed/rejected):";
  for (const auto& c : counts) {
    out += " " + c.field + " " + std::to_string(c.applied) + "/" +
           (c.changed < 0 ? std::string("-") : std::to_string(c.changed)) + "/" + std::to_string(c.rejected) + ",";
  }
  out.back() = '\n';
  return out;
}

nlohmann::json field_counts_json(const std::vector<FieldCount>& counts) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& c : counts) {
    out[c.field] = {{"applied", c.applied},
                    {"changed", c.changed < 0 ? nlohmann::json(nullptr) : nlohmann::json(c.changed)},
                    {"rejected", c.rejected}};
  }
  return out;
}

}  // namespace leadsync::ctl
