// Sends the failed records of a batch onward (design.md §2, R5): a retryable failure to its next
// retry tier, a permanent one or an exhausted one to the dead-letter topic, payload unchanged and
// the error context in headers. Each forward is tracked by its own delivery report, so the caller
// knows exactly which records Kafka has acknowledged; an unacknowledged record's offset must not
// be stored.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/kafka_producer.h"
#include "workers/apply_target.h"
#include "workers/metrics.h"
#include "workers/record.h"
#include "workers/retry.h"

namespace leadsync::workers {

struct ForwardResult {
  std::vector<const Record*> unacknowledged;  // forwards that failed or were not reported in time
  std::string first_error;                    // why the first of them failed
  RunCounts dead_lettered;                    // acknowledged dead letters, per run (`failed`)
  bool all_acknowledged() const { return unacknowledged.empty(); }
};

class Forwarder {
 public:
  Forwarder(const common::KafkaConfig& config, const RetryTiers& tiers, WorkerMetrics& metrics);

  // Forwards every record of `batch` that has a failure and waits up to `timeout` for all their
  // delivery reports.
  ForwardResult forward(const std::vector<Record>& batch, std::chrono::milliseconds timeout);

  void flush(std::chrono::milliseconds timeout) { producer_.flush(timeout); }

 private:
  const RetryTiers& tiers_;
  WorkerMetrics& metrics_;
  common::KafkaProducer producer_;
};

}  // namespace leadsync::workers
