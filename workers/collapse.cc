#include "workers/collapse.h"

#include <algorithm>
#include <unordered_map>

namespace leadsync::workers {

std::map<std::string, std::vector<std::size_t>> newest_per_key(
    const std::vector<const common::ChangeEvent*>& events, std::map<std::string, ApplyCounts>& stale_per_run) {
  std::map<std::string, std::unordered_map<std::string, std::size_t>> newest;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = *events[i];
    auto [it, fresh] = newest[e.entity()].try_emplace(e.key(), i);
    if (fresh) continue;
    const auto& held = *events[it->second];
    if (held.source_version() > e.source_version()) {
      stale_per_run[e.run_id()].stale++;
    } else {
      stale_per_run[held.run_id()].stale++;
      it->second = i;
    }
  }
  std::map<std::string, std::vector<std::size_t>> out;
  for (auto& [entity, by_key] : newest) {
    auto& list = out[entity];
    list.reserve(by_key.size());
    for (const auto& [key, index] : by_key) list.push_back(index);
    std::sort(list.begin(), list.end());  // batch order: deterministic statements
  }
  return out;
}

}  // namespace leadsync::workers
