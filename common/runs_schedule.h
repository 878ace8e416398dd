// Which of a producer service's sources to start now (design.md §6, R4): a queued run (a trigger)
// at once, a source whose schedule came due unless it is paused. Also announces the service in
// leadsync.producer_instances, so that a trigger can tell whether anyone will start its run.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/runs.h"

namespace leadsync::common {

class ServiceSchedule {
 public:
  using Clock = std::chrono::steady_clock;

  // `sources`: name -> schedule interval. Every source is due at once when the service starts.
  ServiceSchedule(RunStore& store, std::string instance, std::map<std::string, std::chrono::milliseconds> sources);
  ~ServiceSchedule();  // withdraws the announcement (best effort)
  ServiceSchedule(const ServiceSchedule&) = delete;
  ServiceSchedule& operator=(const ServiceSchedule&) = delete;

  // The sources to start now, queued ones first; call it about every 100 ms (a trigger is started
  // within a second).
  std::vector<std::string> due_now(Clock::time_point now = Clock::now());
  // A run of `source` ended at `now`: its schedule counts from here.
  void ran(const std::string& source, Clock::time_point now = Clock::now());
  // A run of `source` stopped unfinished (paused): it is due again at once (once resumed).
  void due_again(const std::string& source) { due_[source] = Clock::time_point{}; }

 private:
  RunStore& store_;
  std::string instance_;
  std::map<std::string, std::chrono::milliseconds> intervals_;
  std::map<std::string, Clock::time_point> due_;
  Clock::time_point announced_{};
};

// host-pid: names this process in leadsync.producer_instances.
std::string service_instance_name();

}  // namespace leadsync::common
