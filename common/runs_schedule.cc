#include "common/runs_schedule.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>

namespace leadsync::common {

ServiceSchedule::ServiceSchedule(RunStore& store, std::string instance,
                                 std::map<std::string, std::chrono::milliseconds> sources)
    : store_(store), instance_(std::move(instance)), intervals_(std::move(sources)) {
  const auto now = Clock::now();
  for (const auto& [name, interval] : intervals_) due_[name] = now;
}

ServiceSchedule::~ServiceSchedule() {
  try {
    store_.withdraw(instance_);
  } catch (const std::exception& e) {
    spdlog::debug("could not withdraw producer instance {}: {}", instance_, e.what());
  }
}

std::vector<std::string> ServiceSchedule::due_now(Clock::time_point now) {
  std::vector<std::string> names;
  for (const auto& [name, interval] : intervals_) names.push_back(name);
  if (now - announced_ >= store_.heartbeat_interval()) {
    store_.announce(instance_, names);
    announced_ = now;
  }
  auto out = store_.queued_sources(names);
  for (const auto& name : names) {
    if (now < due_[name] || std::find(out.begin(), out.end(), name) != out.end()) continue;
    if (store_.paused(name)) continue;  // resume makes it due again at once: due_ stays in the past
    out.push_back(name);
  }
  return out;
}

void ServiceSchedule::ran(const std::string& source, Clock::time_point now) {
  const auto it = intervals_.find(source);
  if (it != intervals_.end()) due_[source] = now + it->second;
}

std::string service_instance_name() {
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return std::string(host) + "-" + std::to_string(getpid());
}

}  // namespace leadsync::common
