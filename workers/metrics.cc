#include "workers/metrics.h"

#include "common/metric_names.h"

namespace leadsync::workers {

WorkerMetrics::WorkerMetrics(prometheus::Registry& registry)
    : consumed_(prometheus::BuildCounter()
                    .Name(metric::kEventsConsumed)
                    .Help("Change events taken from Kafka, by topic")
                    .Register(registry)),
      applied_(prometheus::BuildCounter()
                   .Name(metric::kEventsApplied)
                   .Help("Change events applied, by result: inserted, updated, deleted, unchanged, stale")
                   .Register(registry)),
      retried_(prometheus::BuildCounter()
                   .Name(metric::kEventsRetried)
                   .Help("Change events sent to a retry tier, by tier")
                   .Register(registry)),
      dead_lettered_(prometheus::BuildCounter()
                         .Name(metric::kEventsDeadLettered)
                         .Help("Change events sent to the dead-letter topic, by error class")
                         .Register(registry)),
      batch_seconds(prometheus::BuildHistogram()
                        .Name(metric::kBatchApplySeconds)
                        .Help("Time to apply one batch to PostgreSQL, forwarding failures included")
                        .Register(registry)
                        .Add({}, prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                                         0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
      latency(prometheus::BuildHistogram()
                  .Name(metric::kEndToEndLatencySeconds)
                  .Help("From the adapter observing a change (observed_at) to its commit in PostgreSQL")
                  .Register(registry)
                  .Add({}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5,
                                                                   1, 2.5, 5, 10, 30, 60})),
      database_up(prometheus::BuildGauge()
                      .Name(metric::kDatabaseUp)
                      .Help("1 while the worker holds a working PostgreSQL connection")
                      .Register(registry)
                      .Add({})),
      assigned(prometheus::BuildGauge()
                   .Name(metric::kAssignedPartitions)
                   .Help("Kafka partitions assigned to this worker, retry tiers included")
                   .Register(registry)
                   .Add({})),
      identity_links(prometheus::BuildCounter()
                         .Name(metric::kIdentityLinks)
                         .Help("Records linked to an existing record by an alternate key (match_on) instead of "
                               "being inserted as duplicates")
                         .Register(registry)
                         .Add({})),
      lag(prometheus::BuildGauge()
              .Name(metric::kConsumerLagMessages)
              .Help("Messages behind the high watermark, summed over this worker's assigned partitions")
              .Register(registry)
              .Add({})),
      forward_failures(prometheus::BuildCounter()
                           .Name(metric::kForwardFailures)
                           .Help("Failed records whose forward to a retry tier or the dead-letter topic Kafka did "
                                 "not acknowledge; their offsets stay uncommitted and they are read again")
                           .Register(registry)
                           .Add({})),
      target_unavailable_(prometheus::BuildCounter()
                              .Name(metric::kTargetUnavailable)
                              .Help("Batches the target could not take, by reason: outage (unreachable) or misfit "
                                    "(reachable, but the statement fails for the deployment: schema, privileges, "
                                    "resources)")
                              .Register(registry)),
      backoff_active(prometheus::BuildGauge()
                         .Name(metric::kWorkerBackoffActive)
                         .Help("1 while the worker backs off from an unavailable target instead of applying")
                         .Register(registry)
                         .Add({})) {}

}  // namespace leadsync::workers
