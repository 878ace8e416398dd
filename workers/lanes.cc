#include "workers/lanes.h"

#include <algorithm>
#include <exception>
#include <future>
#include <stdexcept>
#include <utility>

namespace leadsync::workers {

LanedTarget::LanedTarget(std::vector<std::unique_ptr<ApplyTarget>> lanes) : lanes_(std::move(lanes)) {
  if (lanes_.empty()) throw std::invalid_argument("LanedTarget: no lanes");
}

bool LanedTarget::connect() {
  bool all = true;
  for (auto& lane : lanes_) {
    if (!lane->available()) all = lane->connect() && all;
  }
  return all;
}

bool LanedTarget::available() const {
  return std::all_of(lanes_.begin(), lanes_.end(), [](const auto& lane) { return lane->available(); });
}

std::vector<std::size_t> LanedTarget::assign(const std::vector<Record*>& records, std::size_t lanes) {
  std::vector<std::size_t> lane_of(records.size(), 0);
  if (lanes <= 1) return lane_of;
  // A partition by its topic's handle and number: the batch holds runs of one partition, and this
  // runs for every record (no topic name is copied). Its record count, then its lane.
  using Partition = std::pair<const void*, int32_t>;
  std::map<Partition, std::size_t> partitions;
  for (const auto* r : records) {
    if (r->message) ++partitions[{topic_handle(*r->message), r->message->partition()}];
  }
  std::vector<std::pair<std::size_t, Partition>> largest_first;
  for (const auto& [p, n] : partitions) largest_first.emplace_back(n, p);
  std::sort(largest_first.begin(), largest_first.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::size_t> load(lanes, 0);
  for (const auto& [n, p] : largest_first) {
    const auto lane = static_cast<std::size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[lane] += n;
    partitions[p] = lane;
  }
  for (std::size_t i = 0; i < records.size(); ++i) {
    const auto* r = records[i];
    if (r->message) lane_of[i] = partitions.at({topic_handle(*r->message), r->message->partition()});
  }
  return lane_of;
}

RunCounts LanedTarget::apply(const std::vector<Record*>& records) {
  const auto lane_of = assign(records, lanes_.size());
  std::vector<std::vector<Record*>> parts(lanes_.size());
  for (std::size_t i = 0; i < records.size(); ++i) parts[lane_of[i]].push_back(records[i]);
  std::vector<std::size_t> busy;
  for (std::size_t lane = 0; lane < parts.size(); ++lane) {
    if (!parts[lane].empty()) busy.push_back(lane);
  }

  // The first busy lane on this thread, the others on threads of their own; every lane is waited
  // for before anything is thrown, so that no lane still works on the batch when the caller retries it.
  std::vector<std::future<RunCounts>> others;
  for (std::size_t i = 1; i < busy.size(); ++i) {
    const auto lane = busy[i];
    others.push_back(std::async(std::launch::async, [this, lane, &parts] { return lanes_[lane]->apply(parts[lane]); }));
  }
  std::exception_ptr failed;
  RunCounts total;
  const auto add = [&total](const RunCounts& counts) {
    for (const auto& [run, c] : counts) total[run] += c;
  };
  try {
    if (!busy.empty()) add(lanes_[busy[0]]->apply(parts[busy[0]]));
  } catch (...) {
    failed = std::current_exception();
  }
  for (auto& f : others) {
    try {
      add(f.get());
    } catch (...) {
      if (!failed) failed = std::current_exception();
    }
  }
  if (failed) {
    // What the other lanes committed stays committed, and the retried batch skips it: its counts
    // are carried to the batch's next return, so that the worker's metrics count it once.
    for (const auto& [run, c] : total) carried_[run] += c;
    std::rethrow_exception(failed);
  }
  add(carried_);
  carried_.clear();
  return total;
}

void LanedTarget::count_dead_letters(const RunCounts& per_run) { lanes_[0]->count_dead_letters(per_run); }

void LanedTarget::settle(const RunCounts& dead_lettered, const std::map<TopicPartition, int64_t>& rewind) {
  for (std::size_t lane = 1; lane < lanes_.size(); ++lane) lanes_[lane]->settle({}, rewind);
  lanes_[0]->settle(dead_lettered, rewind);
}

}  // namespace leadsync::workers
