#include "workers/validate.h"

namespace leadsync::workers {

std::string validate_event(const common::Config& config, const common::ChangeEvent& e) {
  const auto it = config.entities.find(e.entity());
  if (it == config.entities.end()) return "unknown entity '" + e.entity() + "'";
  const auto& entity = it->second;
  if (e.key().empty()) return "empty key";
  if (e.op() != leadsync::v1::OP_UPSERT && e.op() != leadsync::v1::OP_DELETE) {
    return "op must be UPSERT or DELETE, got " + std::to_string(static_cast<int>(e.op()));
  }
  if (e.source_version() <= 0) return "source_version must be positive";
  if (e.op() == leadsync::v1::OP_DELETE) return "";
  if (e.partial() && !entity.partial_events) {
    return "partial events are not accepted for entity '" + entity.name + "' (set partial_events: true)";
  }
  if (e.partial() && e.fields().empty()) return "partial event names no field";
  for (const auto& [name, value] : e.fields()) {
    const auto* f = entity.field(name);
    if (!f) return "field '" + name + "' is not a field of entity '" + entity.name + "'";
    if (auto problem = common::check_value(*f, value); !problem.empty()) return problem;
  }
  if (e.partial()) return "";
  // A full image names every field: a missing one would be silently nulled (R6).
  for (const auto& f : entity.fields) {
    if (!e.fields().count(f.name)) return "full event lacks field '" + f.name + "'";
  }
  return "";
}

}  // namespace leadsync::workers
