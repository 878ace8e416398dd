#include "workers/collapse.h"

#include <algorithm>
#include <unordered_map>

namespace leadsync::workers {

bool newer_than(const common::ChangeEvent& a, const common::ChangeEvent& b) {
  if (a.source_version() != b.source_version()) return a.source_version() > b.source_version();
  return a.event_id() > b.event_id();
}

BatchPlan::BatchPlan(const common::Config& config, const std::vector<const common::ChangeEvent*>& events)
    : events_(events), key_of_(events.size()) {
  std::map<std::string, std::unordered_map<std::string, std::size_t>> index;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = *events[i];
    auto [it, fresh] = index[e.entity()].try_emplace(e.key(), keys_.size());
    if (fresh) {
      Key k;
      k.entity = &config.entity(e.entity()).name;
      k.every_event = config.entity(e.entity()).partial_events;
      keys_.push_back(std::move(k));
    }
    keys_[it->second].order.push_back(i);
    key_of_[i] = it->second;
  }
  for (auto& k : keys_) {
    std::stable_sort(k.order.begin(), k.order.end(),
                     [&](std::size_t a, std::size_t b) { return newer_than(*events[a], *events[b]); });
  }
}

std::map<std::string, std::vector<std::size_t>> BatchPlan::next_round() {
  std::map<std::string, std::vector<std::size_t>> out;
  for (auto& k : keys_) {
    if (k.next >= k.order.size() || (!k.every_event && !k.open)) continue;
    out[*k.entity].push_back(k.order[k.next++]);
    k.open = false;
  }
  for (auto& [entity, list] : out) std::sort(list.begin(), list.end());  // batch order: deterministic statements
  return out;
}

void BatchPlan::failed(std::size_t index) { keys_[key_of_[index]].open = true; }

void BatchPlan::count_unoffered(std::map<std::string, ApplyCounts>& per_run) const {
  for (const auto& k : keys_) {
    for (std::size_t i = k.next; i < k.order.size(); ++i) per_run[events_[k.order[i]]->run_id()].stale++;
  }
}

}  // namespace leadsync::workers
