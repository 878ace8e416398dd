// Every Prometheus metric leadsync exports, declared once. The code registers its families with
// these constants; tests/unit/deploy_metrics_test.cc checks that the alert rules, the dashboard and
// the README's metric table name only metrics listed here, and that every listed metric is in the
// README, so a renamed metric cannot leave an alert that never fires.
//
// Conventions (design.md §7): leadsync_ prefix, base units in the name (_seconds, _messages),
// counters end in _total, labels name configuration (topic, source, result, tier), never a record.
#pragma once

#include <string_view>

namespace leadsync::metric {

// Who exports a metric: the worker, the producer, or every process (common/telemetry).
enum class Exporter { kWorker, kProducer, kEveryProcess };
enum class Kind { kCounter, kGauge, kHistogram };

// ---- worker
inline constexpr char kEventsConsumed[] = "leadsync_events_consumed_total";
inline constexpr char kEventsApplied[] = "leadsync_events_applied_total";
inline constexpr char kEventsRetried[] = "leadsync_events_retried_total";
inline constexpr char kEventsDeadLettered[] = "leadsync_events_dead_lettered_total";
inline constexpr char kBatchApplySeconds[] = "leadsync_batch_apply_seconds";
inline constexpr char kEndToEndLatencySeconds[] = "leadsync_end_to_end_latency_seconds";
inline constexpr char kDatabaseUp[] = "leadsync_database_up";
inline constexpr char kAssignedPartitions[] = "leadsync_assigned_partitions";
inline constexpr char kIdentityLinks[] = "leadsync_identity_links_total";
inline constexpr char kConsumerLagMessages[] = "leadsync_consumer_lag_messages";
// 1 while the worker backs off from an infrastructure error (schema mismatch, missing privilege,
// out of resources) instead of applying; labelled by the SQLSTATE class. Exported by the worker's
// infrastructure backoff (issue 7 item 9).
inline constexpr char kWorkerBackoffActive[] = "leadsync_worker_backoff_active";

// ---- producer
inline constexpr char kSourceRuns[] = "leadsync_source_runs_total";
inline constexpr char kSourceRecords[] = "leadsync_source_records_total";
inline constexpr char kEventsPublished[] = "leadsync_events_published_total";
inline constexpr char kSourceRunDurationSeconds[] = "leadsync_source_run_duration_seconds";
inline constexpr char kSourceLastSuccessTimestamp[] = "leadsync_source_last_success_timestamp_seconds";

// ---- every process (common/telemetry)
inline constexpr char kBuildInfo[] = "leadsync_build_info";
inline constexpr char kReady[] = "leadsync_ready";

struct MetricInfo {
  std::string_view name;
  Kind kind;
  Exporter exporter;
};

inline constexpr MetricInfo kAll[] = {
    {kEventsConsumed, Kind::kCounter, Exporter::kWorker},
    {kEventsApplied, Kind::kCounter, Exporter::kWorker},
    {kEventsRetried, Kind::kCounter, Exporter::kWorker},
    {kEventsDeadLettered, Kind::kCounter, Exporter::kWorker},
    {kBatchApplySeconds, Kind::kHistogram, Exporter::kWorker},
    {kEndToEndLatencySeconds, Kind::kHistogram, Exporter::kWorker},
    {kDatabaseUp, Kind::kGauge, Exporter::kWorker},
    {kAssignedPartitions, Kind::kGauge, Exporter::kWorker},
    {kIdentityLinks, Kind::kCounter, Exporter::kWorker},
    {kConsumerLagMessages, Kind::kGauge, Exporter::kWorker},
    {kWorkerBackoffActive, Kind::kGauge, Exporter::kWorker},
    {kSourceRuns, Kind::kCounter, Exporter::kProducer},
    {kSourceRecords, Kind::kCounter, Exporter::kProducer},
    {kEventsPublished, Kind::kCounter, Exporter::kProducer},
    {kSourceRunDurationSeconds, Kind::kHistogram, Exporter::kProducer},
    {kSourceLastSuccessTimestamp, Kind::kGauge, Exporter::kProducer},
    {kBuildInfo, Kind::kGauge, Exporter::kEveryProcess},
    {kReady, Kind::kGauge, Exporter::kEveryProcess},
};

inline const MetricInfo* find(std::string_view name) {
  for (const auto& m : kAll) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace leadsync::metric
