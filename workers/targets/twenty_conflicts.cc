#include "workers/targets/twenty_conflicts.h"

#include "workers/targets/twenty_client.h"

namespace leadsync::workers {

const char* side_name(Side s) noexcept { return s == Side::kPostgres ? "postgres" : "crm"; }

std::vector<FieldDecision> decide_fields(const common::ReverseConfig& reverse, const common::ChangeEvent& event,
                                         const nlohmann::json& crm_record, int64_t crm_version) {
  std::vector<FieldDecision> out;
  for (const auto& [field, path] : reverse.fields) {
    const auto it = event.fields().find(field);
    if (it == event.fields().end()) continue;
    auto pg = crm_json(it->second);
    const auto* held = crm_field(crm_record, path);
    auto crm = held ? *held : nlohmann::json(nullptr);
    if (pg == crm) continue;
    FieldDecision d;
    d.field = field;
    d.path = path;
    d.postgres_value = std::move(pg);
    d.crm_value = std::move(crm);
    d.rule = reverse.priority_of(field);
    switch (d.rule) {
      case common::FieldPriority::kPostgres: d.winner = Side::kPostgres; break;
      case common::FieldPriority::kCrm: d.winner = Side::kCrm; break;
      case common::FieldPriority::kLastWriteWins:
        d.winner = event.source_version() > crm_version ? Side::kPostgres : Side::kCrm;
        break;
    }
    out.push_back(std::move(d));
  }
  return out;
}

}  // namespace leadsync::workers
