#include "producers/sync_run.h"

#include <prometheus/family.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "common/errors.h"
#include "common/mapping.h"
#include "common/pg.h"
#include "producers/mapper.h"
#include "producers/source_state.h"

namespace leadsync::producers {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kStoredErrorsPerRun = 1000;  // all are counted, the first ones are kept
constexpr auto kHeartbeatEvery = std::chrono::seconds(2);
constexpr int kStaleHeartbeatSeconds = 60;

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string new_run_id(const std::string& source) {
  std::random_device rd;
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%lld-%08x", static_cast<long long>(now_micros() / 1000), rd());
  return source + suffix;
}

// The mapping is part of the snapshot's identity: the same sheet under a new mapping is new work.
std::string mapping_fingerprint(const common::SourceConfig& s, const common::EntityConfig& e) {
  std::string text = s.key_column + "\n" + e.name + "\n" + e.key + "\n";
  for (const auto& [column, field] : s.columns) {
    text += column + "\t" + field + "\n";
    if (const auto* f = e.field(field)) {
      text += std::string(common::field_type_name(f->type)) + "\t" + std::to_string(static_cast<int>(f->normalize)) +
              "\t" + f->separator + "\t" + (f->required ? "r" : "") + "\n";
    }
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(XXH3_64bits(text.data(), text.size())));
  return out;
}

class Run {
 public:
  Run(const common::Config& config, const common::SourceConfig& source, common::KafkaProducer& producer,
      ProducerMetrics* metrics)
      : config_(config),
        source_(source),
        entity_(config.entity(source.entity)),
        producer_(producer),
        metrics_(metrics),
        conn_(common::pg_connect(config.postgres.url, "leadsync-producer")) {
    report_.source = source.name;
    report_.run_id = new_run_id(source.name);
  }

  RunReport execute(std::unique_ptr<SourceAdapter> adapter) {
    const auto started = Clock::now();
    try {
      begin();
      try {
        process(*adapter);
      } catch (const std::exception& e) {
        report_.status = common::RunStatus::kFailed;
        report_.message = e.what();
      }
      finish();
    } catch (const std::exception& e) {
      // The run could not even be recorded (database down, another run active).
      report_.status = common::RunStatus::kFailed;
      report_.message = e.what();
    }
    report_.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    record_metrics();
    return report_;
  }

 private:
  void begin() {
    for (int attempt = 0; attempt < 2; ++attempt) {
      try {
        pqxx::work tx(*conn_);
        tx.exec_params(
            "INSERT INTO leadsync.sync_runs (run_id, source, status, started_at, heartbeat_at) "
            "VALUES ($1, $2, 'running', now(), now())",
            report_.run_id, source_.name);
        tx.commit();
        return;
      } catch (const pqxx::unique_violation& e) {
        // Only the one-active-run index means "already running"; anything else is a real error.
        if (std::string(e.what()).find("sync_runs_one_active") == std::string::npos) throw;
      }
      pqxx::work fix(*conn_);
      // A run whose process died keeps its row 'running'; once its heartbeat is stale it is
      // failed here, which frees the source (R3).
      const auto stale = fix.exec_params(
          "UPDATE leadsync.sync_runs SET status = 'failed', finished_at = now(), "
          "message = 'heartbeat stale for more than " + std::to_string(kStaleHeartbeatSeconds) +
              " s; marked failed by run ' || $2 "
              "WHERE source = $1 AND status IN ('queued','running') AND heartbeat_at < now() - make_interval(secs => $3) "
              "RETURNING run_id",
          source_.name, report_.run_id, kStaleHeartbeatSeconds);
      fix.commit();
      if (stale.empty()) break;
      spdlog::warn("source {}: run {} had a stale heartbeat and was marked failed", source_.name,
                   stale[0][0].as<std::string>());
    }
    pqxx::work tx(*conn_);
    const auto active = tx.exec_params(
        "SELECT run_id, started_at::text FROM leadsync.sync_runs WHERE source = $1 AND status IN ('queued','running')",
        source_.name);
    const auto who = active.empty() ? std::string("another run")
                                    : "run " + active[0][0].as<std::string>() + " (started " +
                                          active[0][1].as<std::string>() + ")";
    report_.run_id.clear();  // nothing recorded under this id
    throw std::runtime_error("source " + source_.name + " is already running: " + who);
  }

  // Wall-clock time of the run, but always above every version this source stamped before: a clock
  // that steps back must not make a newer run's changes look older than what the table has.
  int64_t next_version() {
    pqxx::work tx(*conn_);
    const auto last = tx.exec_params1(
        "SELECT coalesce(max(source_version), 0) FROM leadsync.sync_runs WHERE source = $1", source_.name)[0];
    const auto v = std::max(now_micros(), last.as<int64_t>() + 1);
    tx.exec_params("UPDATE leadsync.sync_runs SET source_version = $2 WHERE run_id = $1", report_.run_id, v);
    tx.commit();
    return v;
  }

  std::string last_snapshot_hash() {
    pqxx::work tx(*conn_);
    const auto r = tx.exec_params(
        "SELECT snapshot_hash FROM leadsync.sync_runs WHERE source = $1 AND status = 'completed' "
        "ORDER BY finished_at DESC LIMIT 1",
        source_.name);
    return r.empty() || r[0][0].is_null() ? std::string() : r[0][0].as<std::string>();
  }

  void heartbeat(SourceAdapter& adapter, bool force = false) {
    const auto now = Clock::now();
    if (!force && now - last_beat_ < kHeartbeatEvery) return;
    last_beat_ = now;
    pqxx::work tx(*conn_);
    const auto status = tx.exec_params1(
        "UPDATE leadsync.sync_runs SET heartbeat_at = now(), rows_read = $2, progress_percent = $3, "
        "events_published = $4 WHERE run_id = $1 RETURNING status",
        report_.run_id, static_cast<int64_t>(report_.rows_read), adapter.progress() * 100.0,
        static_cast<int64_t>(report_.events_published));
    tx.commit();
    if (common::parse_run_status(status[0].as<std::string>()) == common::RunStatus::kCancelled) {
      throw std::runtime_error("run cancelled by an operator");
    }
  }

  void publish(common::ChangeEvent& event) {
    event.set_run_id(report_.run_id);
    event.set_source_version(version_);
    event.set_observed_at_micros(now_micros());
    event.set_event_id(
        common::make_event_id(source_.name, entity_.name, event.key(), version_, event.checksum()));
    event.SerializeToString(&buffer_);
    producer_.produce(config_.kafka.topic, entity_.name + "/" + event.key(), buffer_);
    ++report_.events_published;
  }

  void reject(const RowError& e) {
    ++report_.failed_records;
    if (errors_.size() < kStoredErrorsPerRun) errors_.push_back(e);
    if (report_.failed_records <= 20) {
      spdlog::warn("source {}: line {}{}{}: {}", source_.name, e.position, e.key.empty() ? "" : ", key '" + e.key + "'",
                   e.column.empty() ? "" : ", column '" + e.column + "'", e.message);
    }
  }

  void process(SourceAdapter& adapter) {
    version_ = next_version();
    const auto fingerprint = adapter.open() + ":" + mapping_fingerprint(source_, entity_);
    snapshot_hash_ = fingerprint;
    if (fingerprint == last_snapshot_hash()) {
      // Byte for byte the snapshot of the last completed run, under the same mapping: every record
      // stored from that run is unchanged, and none needs parsing.
      pqxx::work tx(*conn_);
      report_.unchanged_records = tx.exec_params1("SELECT count(*) FROM leadsync.source_state WHERE source = $1",
                                                  source_.name)[0].as<uint64_t>();
      tx.commit();
      report_.snapshot_unchanged = true;
      report_.status = common::RunStatus::kCompleted;
      report_.message = "snapshot unchanged since the last completed run (not parsed)";
      return;
    }
    Mapper mapper(source_, entity_, adapter);
    for (const auto& w : adapter.column_warnings()) warnings_.push_back(w);
    if (!mapper.unmapped_columns().empty()) {
      std::string list;
      for (const auto& c : mapper.unmapped_columns()) list += (list.empty() ? "'" : ", '") + c + "'";
      warnings_.push_back("columns not mapped to any field: " + list);
    }
    for (const auto& w : warnings_) spdlog::warn("source {}: {}", source_.name, w);
    state_.load(*conn_, source_.name);
    producer_.warm_up(config_.kafka.topic);

    SourceRecord record;
    std::optional<std::string> parse_error;
    common::ChangeEvent event;
    RowError row_error;
    while (adapter.next(record, parse_error)) {
      if (Mapper::is_blank(record)) continue;
      ++report_.rows_read;
      heartbeat(adapter);
      if (parse_error) {
        reject({record.position, "", "", "", *parse_error});
        // A malformed line must not read as a deletion of the record it holds.
        state_.keep_any_of(record.cells);
        continue;
      }
      if (!mapper.map(record, event, row_error)) {
        reject(row_error);
        state_.keep(row_error.key);
        continue;
      }
      std::size_t first_line = 0;
      switch (state_.observe(event.key(), event.checksum(), record.position, first_line)) {
        case SourceState::Seen::kDuplicate:
          reject({record.position, event.key(), source_.key_column, event.key(),
                  "duplicate key '" + event.key() + "' (first seen at line " + std::to_string(first_line) +
                      "); this row is skipped"});
          continue;
        case SourceState::Seen::kUnchanged:
          ++report_.unchanged_records;
          continue;
        case SourceState::Seen::kChanged:
          ++report_.changed_records;
          break;
        case SourceState::Seen::kNew:
          ++report_.new_records;
          break;
      }
      publish(event);
    }
    publish_deletes();
    wait_for_acks();
    report_.status = common::RunStatus::kCompleted;
  }

  void publish_deletes() {
    auto gone = state_.vanished();
    if (gone.empty()) return;
    if (report_.rows_read == 0 && !source_.allow_empty) {
      throw std::runtime_error("the source has no records; refusing to delete the " + std::to_string(gone.size()) +
                               " records synced before (set allow_empty: true on the source to allow it)");
    }
    if (source_.on_missing == common::OnMissing::kIgnore) return;
    common::ChangeEvent event;
    for (const auto& key : gone) {
      event.Clear();
      event.set_source(source_.name);
      event.set_entity(entity_.name);
      event.set_origin(source_.name);
      event.set_key(key);
      event.set_op(leadsync::v1::OP_DELETE);
      event.set_checksum(0);
      publish(event);
      ++report_.deleted_records;
    }
    state_.forget(std::move(gone));
  }

  void wait_for_acks() {
    const auto before_failed = producer_.failed();
    while (!producer_.flush(std::chrono::seconds(5))) {
      spdlog::info("source {}: waiting for Kafka to acknowledge {} events", source_.name, report_.events_published);
    }
    if (producer_.failed() != before_failed) {
      throw std::runtime_error("Kafka did not acknowledge every event (" + producer_.first_error() +
                               "); the stored state was not advanced, the next run re-sends them");
    }
  }

  void write_errors(pqxx::work& tx) {
    for (const auto& e : errors_) {
      tx.exec_params(
          "INSERT INTO leadsync.run_errors (run_id, source, line, key, column_name, value, message) "
          "VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), $7)",
          report_.run_id, source_.name, static_cast<int64_t>(e.position), e.key, e.column, e.value, e.message);
    }
  }

  void finish() {
    std::string message = report_.message;
    for (const auto& w : warnings_) message += (message.empty() ? "" : "; ") + w;
    if (report_.failed_records > 0) {
      message += (message.empty() ? "" : "; ") + std::to_string(report_.failed_records) +
                 " record(s) rejected, see leadsync.run_errors";
    }
    report_.message = message;
    pqxx::work tx(*conn_);
    // The state moves with the run's completion in one transaction: both or neither.
    if (report_.status == common::RunStatus::kCompleted) state_.write(tx, source_.name, version_, report_.run_id);
    write_errors(tx);
    tx.exec_params(
        "UPDATE leadsync.sync_runs SET status = $2, finished_at = now(), heartbeat_at = now(), rows_read = $3, "
        "rows_total = $3, events_published = $4, new_records = $5, changed_records = $6, deleted_records = $7, "
        "unchanged_records = $8, failed_records = $9, progress_percent = CASE WHEN $2 = 'completed' THEN 100 "
        "ELSE progress_percent END, message = NULLIF($10, ''), snapshot_hash = CASE WHEN $2 = 'completed' THEN $11 END "
        "WHERE run_id = $1",
        report_.run_id, std::string(common::run_status_name(report_.status)), static_cast<int64_t>(report_.rows_read),
        static_cast<int64_t>(report_.events_published), static_cast<int64_t>(report_.new_records),
        static_cast<int64_t>(report_.changed_records), static_cast<int64_t>(report_.deleted_records),
        static_cast<int64_t>(report_.unchanged_records), static_cast<int64_t>(report_.failed_records), message,
        snapshot_hash_);
    tx.commit();
  }

  void record_metrics() {
    if (!metrics_) return;
    const std::map<std::string, std::string> src{{"source", source_.name}};
    metrics_->runs.Add({{"source", source_.name}, {"status", std::string(common::run_status_name(report_.status))}})
        .Increment();
    auto rows = [&](const char* result, uint64_t n) {
      metrics_->rows.Add({{"source", source_.name}, {"result", result}}).Increment(static_cast<double>(n));
    };
    rows("new", report_.new_records);
    rows("changed", report_.changed_records);
    rows("unchanged", report_.unchanged_records);
    rows("deleted", report_.deleted_records);
    rows("failed", report_.failed_records);
    metrics_->events.Add(src).Increment(static_cast<double>(report_.events_published));
    metrics_->duration.Add(src, prometheus::Histogram::BucketBoundaries{0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900})
        .Observe(report_.seconds);
    if (report_.status == common::RunStatus::kCompleted) {
      metrics_->last_success.Add(src).Set(static_cast<double>(now_micros()) / 1e6);
    }
  }

  const common::Config& config_;
  const common::SourceConfig& source_;
  const common::EntityConfig& entity_;
  common::KafkaProducer& producer_;
  ProducerMetrics* metrics_;
  std::unique_ptr<pqxx::connection> conn_;
  RunReport report_;
  int64_t version_ = 0;
  std::string snapshot_hash_;
  std::string buffer_;
  std::vector<std::string> warnings_;
  std::vector<RowError> errors_;
  SourceState state_;
  Clock::time_point last_beat_ = Clock::now();
};

}  // namespace

ProducerMetrics::ProducerMetrics(prometheus::Registry& registry)
    : runs(prometheus::BuildCounter()
               .Name("leadsync_source_runs_total")
               .Help("Source runs finished, by source and final status")
               .Register(registry)),
      rows(prometheus::BuildCounter()
               .Name("leadsync_source_records_total")
               .Help("Source records seen by runs, by source and result (new, changed, unchanged, deleted, failed)")
               .Register(registry)),
      events(prometheus::BuildCounter()
                 .Name("leadsync_events_published_total")
                 .Help("Change events acknowledged by Kafka, by source")
                 .Register(registry)),
      duration(prometheus::BuildHistogram()
                   .Name("leadsync_source_run_duration_seconds")
                   .Help("Wall time of a source run")
                   .Register(registry)),
      last_success(prometheus::BuildGauge()
                       .Name("leadsync_source_last_success_timestamp_seconds")
                       .Help("Unix time of the last completed run of a source")
                       .Register(registry)) {}

SyncRunner::SyncRunner(const common::Config& config, common::KafkaProducer& producer, ProducerMetrics* metrics)
    : config_(config), producer_(producer), metrics_(metrics) {}

RunReport SyncRunner::run(const common::SourceConfig& source, std::unique_ptr<SourceAdapter> adapter) {
  if (!adapter) adapter = make_adapter(source, std::filesystem::temp_directory_path().string());
  try {
    Run run(config_, source, producer_, metrics_);
    return run.execute(std::move(adapter));
  } catch (const std::exception& e) {  // cannot connect to PostgreSQL
    RunReport r;
    r.source = source.name;
    r.status = common::RunStatus::kFailed;
    r.message = e.what();
    return r;
  }
}

}  // namespace leadsync::producers
