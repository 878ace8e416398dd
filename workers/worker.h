// The apply worker (design.md §4): consumes the main topic and every retry tier, applies batches
// to PostgreSQL with the version guard, isolates bad records by splitting the batch, sends
// record-level transient failures to the next retry tier and permanent ones to the dead-letter
// topic, waits out database outages without touching the retry tiers, and stores Kafka offsets
// only after the database commit.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include "common/config.h"
#include "common/telemetry.h"

namespace leadsync::workers {

class ApplyTarget;
struct WorkerMetrics;
// Builds the worker's apply target; the worker owns it and its metrics outlive it.
using TargetFactory = std::function<std::unique_ptr<ApplyTarget>(WorkerMetrics&, prometheus::Registry&)>;

class Worker {
 public:
  Worker(const common::Config& config, common::Telemetry& telemetry);
  // The same consume loop, retry tiers, DLQ and offsets for another target (the CRM sink:
  // workers/targets/twenty_target.h); config.kafka names its topics and group.
  Worker(const common::Config& config, common::Telemetry& telemetry, const TargetFactory& make_target);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Runs until `stop` becomes true, then drains the batch in hand, commits and leaves the group.
  void run(const std::atomic<bool>& stop);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace leadsync::workers
