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

// Who exports a metric: the worker, the producer, every process (common/telemetry),
// `leadsyncctl verify --metrics-file` (a file for node_exporter's textfile collector), or
// `leadsyncctl exporter` (the consumer group as the broker sees it, also while every worker is down).
enum class Exporter { kWorker, kProducer, kEveryProcess, kVerifyCommand, kGroupExporter };
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
// 1 while the worker backs off from an unavailable target (an outage, or a misfit: schema mismatch,
// missing privilege, out of resources) instead of applying (issue 7 item 9).
inline constexpr char kWorkerBackoffActive[] = "leadsync_worker_backoff_active";
// Batches the target could not take, by reason = outage | misfit.
inline constexpr char kTargetUnavailable[] = "leadsync_target_unavailable_total";
// Failed records whose forward to a retry tier or the dead-letter topic Kafka did not acknowledge.
inline constexpr char kForwardFailures[] = "leadsync_forward_failures_total";

// ---- producer
inline constexpr char kSourceRuns[] = "leadsync_source_runs_total";
inline constexpr char kSourceRecords[] = "leadsync_source_records_total";
inline constexpr char kEventsPublished[] = "leadsync_events_published_total";
inline constexpr char kSourceRunDurationSeconds[] = "leadsync_source_run_duration_seconds";
inline constexpr char kSourceLastSuccessTimestamp[] = "leadsync_source_last_success_timestamp_seconds";
// Each source's configured schedule, so an alert can say "not synced within 3 x its schedule".
inline constexpr char kSourceScheduleSeconds[] = "leadsync_source_schedule_seconds";
// Twenty webhook deliveries by source and result: accepted, bad_signature, stale_timestamp,
// replayed_nonce, missing_headers (those four answered 401), queue_full (503), too_large (413).
inline constexpr char kWebhookRequests[] = "leadsync_webhook_requests_total";
// Webhook deliveries accepted and not yet published, by source (503 when it reaches the queue size).
inline constexpr char kWebhookQueueDepth[] = "leadsync_webhook_queue_depth";

// ---- leadsync-capture (PostgreSQL -> Kafka, the reverse direction)
// Age of the oldest application change not yet acknowledged by Kafka (0 when none waits).
inline constexpr char kCaptureLagSeconds[] = "leadsync_capture_lag_seconds";
inline constexpr char kEventsCaptured[] = "leadsync_events_captured_total";

// ---- leadsync-crm-sink (Kafka -> the CRM)
// Records written to the CRM, by op = create | update | delete.
inline constexpr char kCrmWrites[] = "leadsync_crm_writes_total";
// Conflict decisions between PostgreSQL and the CRM, by winner = postgres | crm and rule.
inline constexpr char kConflictDecisions[] = "leadsync_conflict_decisions_total";

// ---- every process (common/telemetry)
inline constexpr char kBuildInfo[] = "leadsync_build_info";
inline constexpr char kReady[] = "leadsync_ready";

// ---- leadsyncctl verify --metrics-file
inline constexpr char kVerifyDriftRecords[] = "leadsync_verify_drift_records";
inline constexpr char kVerifyLastRunTimestamp[] = "leadsync_verify_last_run_timestamp_seconds";
// Per source and mapped field: records whose value differs (labels bounded by the mapping).
inline constexpr char kVerifyMismatches[] = "leadsync_verify_mismatches";

// ---- leadsyncctl exporter
inline constexpr char kGroupLagMessages[] = "leadsync_group_lag_messages";
inline constexpr char kGroupCommittedMessages[] = "leadsync_group_committed_messages";
inline constexpr char kGroupMembers[] = "leadsync_group_members";
inline constexpr char kExporterErrors[] = "leadsync_exporter_errors_total";
// Field-level counters (R6, ctl/field_metrics.h), by entity and field of the mapping: applied events
// that wrote the field, applied updates that changed its value (the audit), records rejected for it.
inline constexpr char kFieldApplied[] = "leadsync_field_applied_total";
inline constexpr char kFieldChanged[] = "leadsync_field_changed_total";
inline constexpr char kFieldRejected[] = "leadsync_field_rejected_total";
inline constexpr char kFieldCountErrors[] = "leadsync_field_count_errors_total";

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
    {kTargetUnavailable, Kind::kCounter, Exporter::kWorker},
    {kForwardFailures, Kind::kCounter, Exporter::kWorker},
    {kSourceRuns, Kind::kCounter, Exporter::kProducer},
    {kSourceRecords, Kind::kCounter, Exporter::kProducer},
    {kEventsPublished, Kind::kCounter, Exporter::kProducer},
    {kSourceRunDurationSeconds, Kind::kHistogram, Exporter::kProducer},
    {kSourceLastSuccessTimestamp, Kind::kGauge, Exporter::kProducer},
    {kSourceScheduleSeconds, Kind::kGauge, Exporter::kProducer},
    {kWebhookRequests, Kind::kCounter, Exporter::kProducer},
    {kWebhookQueueDepth, Kind::kGauge, Exporter::kProducer},
    {kCaptureLagSeconds, Kind::kGauge, Exporter::kProducer},
    {kEventsCaptured, Kind::kCounter, Exporter::kProducer},
    {kCrmWrites, Kind::kCounter, Exporter::kWorker},
    {kConflictDecisions, Kind::kCounter, Exporter::kWorker},
    {kBuildInfo, Kind::kGauge, Exporter::kEveryProcess},
    {kReady, Kind::kGauge, Exporter::kEveryProcess},
    {kVerifyDriftRecords, Kind::kGauge, Exporter::kVerifyCommand},
    {kVerifyLastRunTimestamp, Kind::kGauge, Exporter::kVerifyCommand},
    {kVerifyMismatches, Kind::kGauge, Exporter::kVerifyCommand},
    {kGroupLagMessages, Kind::kGauge, Exporter::kGroupExporter},
    {kGroupCommittedMessages, Kind::kGauge, Exporter::kGroupExporter},
    {kGroupMembers, Kind::kGauge, Exporter::kGroupExporter},
    {kExporterErrors, Kind::kCounter, Exporter::kGroupExporter},
    {kFieldApplied, Kind::kCounter, Exporter::kGroupExporter},
    {kFieldChanged, Kind::kCounter, Exporter::kGroupExporter},
    {kFieldRejected, Kind::kCounter, Exporter::kGroupExporter},
    {kFieldCountErrors, Kind::kCounter, Exporter::kGroupExporter},
};

inline const MetricInfo* find(std::string_view name) {
  for (const auto& m : kAll) {
    if (m.name == name) return &m;
  }
  return nullptr;
}

}  // namespace leadsync::metric
