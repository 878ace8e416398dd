// The capture of the reverse direction (design.md §9): applications' changes to the captured table,
// written to leadsync.outbox by a trigger in their own transaction (common/capture_schema.h), are
// published as ChangeEvents to the reverse topic; an outbox row is deleted only after Kafka has
// acknowledged its event (delivery report), so a crash publishes it again, never loses it.
//
// Why an outbox and not logical decoding: see README "Reverse direction". In short, it needs no
// wal_level=logical, no replication slot that retains WAL while the capture is down, and no
// replication privilege, and it works the same on every managed PostgreSQL; the trigger that must
// stamp applications' edits anyway (echo suppression) writes the outbox row in the same breath.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <pqxx/pqxx>

#include <atomic>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "common/config.h"
#include "common/kafka_producer.h"
#include "common/mapping.h"
#include "common/telemetry.h"

namespace leadsync::producers {

// One outbox row as the capture reads it.
struct OutboxRow {
  int64_t id = 0;
  std::string entity;
  std::string key;
  bool deleted = false;
  std::string payload;  // the row as JSON (to_jsonb)
  int64_t version = 0;
  int64_t created_micros = 0;
};

// The ChangeEvent of an outbox row, or nullopt with `error` set when the row cannot be read (a
// column whose JSON does not fit its field's type). Fields: every entity field in the row; the CRM
// id field is filled from the key for rows whose _source is one of reverse.crm_sources.
std::optional<common::ChangeEvent> outbox_event(const common::Config& config, const OutboxRow& row,
                                                std::string& error);

// The capture's metrics (common/metric_names.h), labelled by the reverse source's name.
struct CaptureMetrics {
  CaptureMetrics(prometheus::Registry& registry, const std::string& source);
  prometheus::Gauge& lag;
  prometheus::Counter& published;
  prometheus::Counter& unreadable;
};

class OutboxCapture {
 public:
  OutboxCapture(const common::Config& config, prometheus::Registry& registry);
  ~OutboxCapture();
  OutboxCapture(const OutboxCapture&) = delete;
  OutboxCapture& operator=(const OutboxCapture&) = delete;

  // One pass: reads up to reverse.capture_batch outbox rows in id order, publishes them, waits for
  // their delivery reports and deletes the acknowledged ones. Returns how many were published.
  // Throws when PostgreSQL or Kafka fails; nothing unacknowledged is deleted.
  std::size_t run_once();
  // Samples the capture lag gauge (age of the oldest outbox row).
  void sample_lag();
  // Passes until `stop`; waits reverse.poll_interval when the outbox is empty, backs off on errors.
  // Only one capture runs per database (an advisory lock); a second one waits as a standby.
  void run(const std::atomic<bool>& stop, common::Telemetry& telemetry);

 private:
  bool connect();

  const common::Config& config_;
  const std::string relation_;  // schema.table of the captured entity
  std::unique_ptr<pqxx::connection> conn_;
  common::KafkaProducer producer_;
  CaptureMetrics metrics_;
};

}  // namespace leadsync::producers
