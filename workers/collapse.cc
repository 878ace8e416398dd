#include "workers/collapse.h"

#include <algorithm>
#include <string_view>
#include <unordered_map>

namespace leadsync::workers {

bool newer_than(const common::ChangeEvent& a, const common::ChangeEvent& b) {
  if (a.source_version() != b.source_version()) return a.source_version() > b.source_version();
  return a.event_id() > b.event_id();
}

// Runs for every batch, over every event: one flat ordering instead of a vector per key, and the
// entity looked up once per run of events of one entity.
BatchPlan::BatchPlan(const common::Config& config, const std::vector<const common::ChangeEvent*>& events)
    : events_(events), key_of_(events.size()), order_(events.size()) {
  std::map<std::string, std::unordered_map<std::string_view, std::size_t>> index;
  std::unordered_map<std::string_view, std::size_t>* by_key = nullptr;
  const common::EntityConfig* entity = nullptr;
  std::vector<std::size_t> events_of_key;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const auto& e = *events[i];
    if (!entity || e.entity() != entity->name) {
      entity = &config.entity(e.entity());
      by_key = &index[e.entity()];
      by_key->reserve(events.size());
    }
    // The keys are views into the events, which outlive the plan.
    auto [it, fresh] = by_key->try_emplace(e.key(), keys_.size());
    if (fresh) {
      keys_.push_back(Key{&entity->name, entity->partial_events});
      events_of_key.push_back(0);
    }
    key_of_[i] = it->second;
    ++events_of_key[it->second];
  }
  // Each key's slice of order_, newest first.
  std::size_t begin = 0;
  for (std::size_t k = 0; k < keys_.size(); ++k) {
    keys_[k].begin = keys_[k].next = keys_[k].end = begin;
    begin += events_of_key[k];
  }
  for (std::size_t i = 0; i < events.size(); ++i) order_[keys_[key_of_[i]].end++] = i;
  for (auto& k : keys_) {
    if (k.end - k.begin < 2) continue;
    std::stable_sort(order_.begin() + static_cast<std::ptrdiff_t>(k.begin),
                     order_.begin() + static_cast<std::ptrdiff_t>(k.end),
                     [&](std::size_t a, std::size_t b) { return newer_than(*events[a], *events[b]); });
  }
}

std::map<std::string, std::vector<std::size_t>> BatchPlan::next_round() {
  std::map<std::string, std::vector<std::size_t>> out;
  std::vector<std::size_t>* list = nullptr;
  const std::string* list_of = nullptr;
  for (auto& k : keys_) {
    if (k.next >= k.end || (!k.every_event && !k.open)) continue;
    if (k.entity != list_of) {
      list = &out[*k.entity];
      list_of = k.entity;
    }
    list->push_back(order_[k.next++]);
    k.open = false;
  }
  for (auto& [entity, list] : out) std::sort(list.begin(), list.end());  // batch order: deterministic statements
  return out;
}

void BatchPlan::failed(std::size_t index) { keys_[key_of_[index]].open = true; }

void BatchPlan::count_unoffered(std::map<std::string, ApplyCounts>& per_run) const {
  for (const auto& k : keys_) {
    for (std::size_t i = k.next; i < k.end; ++i) per_run[events_[order_[i]]->run_id()].stale++;
  }
}

}  // namespace leadsync::workers
