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
#include "common/redact.h"
#include "common/scoring.h"
#include "common/text_encoding.h"
#include "producers/mapper.h"
#include "producers/rule_record.h"
#include "producers/run_record.h"
#include "producers/source_state.h"
#include "producers/target_stamp.h"

namespace leadsync::producers {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kStoredErrorsPerRun = 1000;  // all are counted, the first ones are kept
constexpr auto kHeartbeatEvery = std::chrono::seconds(2);

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

// What turns the snapshot's bytes into events is part of the snapshot's identity: the same sheet
// under a new mapping, field rule, encoding or target is new work.
std::string mapping_fingerprint(const common::SourceConfig& s, const common::EntityConfig& e,
                                const std::string& target_stamp) {
  std::string text = s.key_column + "\n" + e.name + "\n" + e.key + "\n" + target_stamp + "\n";
  if (const auto* csv = std::get_if<common::CsvSettings>(&s.settings)) {
    text += std::string("encoding ") + common::text_encoding_name(csv->encoding) + "\n";
  }
  if (e.rules) text += "rules " + e.rules->version() + "\n";
  for (const auto& [column, field] : s.columns) {
    text += column + "\t" + field + "\n";
    if (const auto* f = e.field(field)) {
      text += std::string(common::field_type_name(f->type)) + "\t" + std::to_string(static_cast<int>(f->normalize)) +
              "\t" + f->separator + "\t" + (f->required ? "r" : "") + "\t" +
              std::to_string(static_cast<int>(f->coerce)) + "\n";
    }
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(XXH3_64bits(text.data(), text.size())));
  return out;
}

std::string percent(double fraction) {
  char out[16];
  std::snprintf(out, sizeof out, "%.3g%%", fraction * 100);
  return out;
}

class Run {
 public:
  Run(const common::Config& config, const common::SourceConfig& source, common::KafkaProducer& producer,
      ProducerMetrics* metrics, RunOptions options)
      : config_(config),
        source_(source),
        entity_(config.entity(source.entity)),
        producer_(producer),
        metrics_(metrics),
        options_(options),
        conn_(common::pg_connect(config.postgres.url, "leadsync-producer")),
        record_(*conn_, source.name, new_run_id(source.name)) {
    report_.source = source.name;
    report_.run_id = record_.run_id();
  }

  RunReport execute(std::unique_ptr<SourceAdapter> adapter) {
    const auto started = Clock::now();
    try {
      record_.begin();
      try {
        process(*adapter);
      } catch (const std::exception& e) {
        report_.status = common::RunStatus::kFailed;
        report_.message = common::redact(e.what());
      }
      finish();
    } catch (const std::exception& e) {
      // The run could not even be recorded (database down, another run active).
      report_.status = common::RunStatus::kFailed;
      report_.message = common::redact(e.what());
    }
    report_.run_id = record_.run_id();
    report_.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    record_metrics();
    return report_;
  }

 private:
  void heartbeat(SourceAdapter& adapter, bool force = false) {
    const auto now = Clock::now();
    if (!force && now - last_beat_ < kHeartbeatEvery) return;
    last_beat_ = now;
    if (record_.heartbeat(report_.rows_read, adapter.progress() * 100.0, report_.events_published) ==
        common::RunStatus::kCancelled) {
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
                   e.column.empty() ? "" : ", column '" + e.column + "'", common::storable_text(e.message, 500));
    }
  }

  // Whether this run publishes every record, and why (empty: an incremental run).
  std::string full_publish_reason(const LastCompleted& last) {
    if (options_.state == StateUse::kFull) return "a full publish was requested (--full)";
    if (!last.target_stamp.empty() && last.target_stamp != target_.stamp) {
      return "the target changed since the last completed run (" + last.target_stamp + " -> " + target_.stamp + ")";
    }
    if (!target_.has_rows) {
      pqxx::work tx(*conn_);
      const bool has_state =
          tx.exec_params1("SELECT EXISTS (SELECT 1 FROM leadsync.source_state WHERE source = $1)", source_.name)[0]
              .as<bool>();
      if (has_state) return "the target table is empty while the source's state is not (truncated or restored)";
    }
    return "";
  }

  void process(SourceAdapter& adapter) {
    version_ = record_.next_version(now_micros());
    target_ = read_target_stamp(*conn_, config_, entity_);
    record_rule_set(*conn_, record_.run_id(), entity_);
    const auto last = record_.last_completed();
    const auto full_reason = full_publish_reason(last);
    const auto raw = adapter.open();
    // Rules that read the clock (age_days) can change a score while the snapshot stays the same.
    const bool clock_bound = entity_.rules && entity_.rules->uses_clock();
    snapshot_hash_ = raw.empty() || clock_bound ? "" : raw + ":" + mapping_fingerprint(source_, entity_, target_.stamp);
    if (full_reason.empty() && !snapshot_hash_.empty() && snapshot_hash_ == last.snapshot_hash) {
      // Byte for byte the snapshot of the last completed run, under the same mapping and target:
      // every record stored from that run is unchanged, and none needs parsing.
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
    if (!full_reason.empty()) warnings_.push_back("every record was published: " + full_reason);
    for (const auto& w : warnings_) spdlog::warn("source {}: {}", source_.name, w);
    state_.load(*conn_, source_.name);
    if (!full_reason.empty()) state_.ignore_checksums();
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
        ++unreadable_rows_;
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
          ++valid_rows_;
          continue;
        case SourceState::Seen::kChanged:
          ++report_.changed_records;
          break;
        case SourceState::Seen::kNew:
          ++report_.new_records;
          break;
      }
      ++valid_rows_;
      publish(event);
    }
    publish_deletes();
    wait_for_acks();
    report_.status = common::RunStatus::kCompleted;
  }

  // The guardrails (issue 7 item 13): a read that may be broken never deletes.
  void publish_deletes() {
    auto gone = state_.vanished();
    if (gone.empty()) return;
    const auto n = std::to_string(gone.size());
    if (valid_rows_ == 0) {
      if (!source_.allow_empty) {
        throw std::runtime_error("the source has no valid records (" + std::to_string(report_.rows_read) +
                                 " rejected); refusing to delete the " + n +
                                 " records synced before (set allow_empty: true on the source to allow it)");
      }
    } else if (source_.on_missing != common::OnMissing::kIgnore) {
      if (unreadable_rows_ > 0) {
        warnings_.push_back(n + " record(s) are missing from the source, but no records were deleted: " +
                            std::to_string(unreadable_rows_) +
                            " row(s) could not be parsed, and a missing record may be among them");
        return;
      }
      const double fraction = static_cast<double>(gone.size()) / static_cast<double>(std::max<std::size_t>(state_.known(), 1));
      const bool allowed = source_.allow_mass_delete || options_.mass_delete == MassDelete::kAllowed;
      if (fraction > source_.max_delete_fraction && !allowed) {
        throw std::runtime_error("refusing to delete " + n + " of the " + std::to_string(state_.known()) +
                                 " records synced before (" + percent(fraction) + ", more than max_delete_fraction " +
                                 percent(source_.max_delete_fraction) +
                                 "); if the source really lost them, set allow_mass_delete: true on the source or run "
                                 "leadsync-producer --allow-mass-delete once");
      }
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

  void finish() {
    std::string message = report_.message;
    for (const auto& w : warnings_) message += (message.empty() ? "" : "; ") + w;
    if (report_.failed_records > 0) {
      message += (message.empty() ? "" : "; ") + std::to_string(report_.failed_records) +
                 " record(s) rejected, see leadsync.run_errors";
    }
    RunTotals totals;
    totals.status = report_.status;
    totals.message = message;
    totals.counters = {static_cast<int64_t>(report_.rows_read),       static_cast<int64_t>(report_.new_records),
                       static_cast<int64_t>(report_.changed_records), static_cast<int64_t>(report_.unchanged_records),
                       static_cast<int64_t>(report_.deleted_records), static_cast<int64_t>(report_.failed_records),
                       static_cast<int64_t>(report_.events_published)};
    totals.snapshot_hash = snapshot_hash_;
    totals.target_stamp = target_.stamp;
    report_.message = record_.finish(std::move(totals), errors_, [&](pqxx::work& tx) {
      state_.write(tx, source_.name, version_, report_.run_id);
    });
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
  RunOptions options_;
  std::unique_ptr<pqxx::connection> conn_;
  RunRecord record_;
  RunReport report_;
  int64_t version_ = 0;
  TargetStamp target_;
  std::string snapshot_hash_;
  std::string buffer_;
  std::vector<std::string> warnings_;
  std::vector<RowError> errors_;
  SourceState state_;
  uint64_t valid_rows_ = 0;       // mapped records with a key seen once: only these count as the source's content
  uint64_t unreadable_rows_ = 0;  // rows the source could not parse (their keys unknown)
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

SyncRunner::SyncRunner(const common::Config& config, common::KafkaProducer& producer, ProducerMetrics* metrics,
                       RunOptions options)
    : config_(config), producer_(producer), metrics_(metrics), options_(options) {}

RunReport SyncRunner::run(const common::SourceConfig& source, std::unique_ptr<SourceAdapter> adapter) {
  if (!adapter) adapter = make_adapter(source, std::filesystem::temp_directory_path().string());
  try {
    Run run(config_, source, producer_, metrics_, options_);
    return run.execute(std::move(adapter));
  } catch (const std::exception& e) {  // cannot connect to PostgreSQL; libpq may quote the URL back
    RunReport r;
    r.source = source.name;
    r.status = common::RunStatus::kFailed;
    r.message = common::redact(e.what());
    return r;
  }
}

}  // namespace leadsync::producers
