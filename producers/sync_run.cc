// One run of a source (sync_run.h). Longer than 400 lines: the steps of a run (claim, read, resume,
// checkpoint, guardrails, finish) share the run's state in one class; splitting it would pass that state around.
#include "producers/sync_run.h"

#include <prometheus/family.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>

#include "common/errors.h"
#include "common/mapping.h"
#include "common/pg.h"
#include "common/redact.h"
#include "common/scoring.h"
#include "common/runs_keepalive.h"
#include "common/text_encoding.h"
#include "producers/mapper.h"
#include "producers/read_ahead.h"
#include "producers/read_position.h"
#include "producers/rule_record.h"
#include "producers/run_record.h"
#include "producers/source_state.h"
#include "producers/target_stamp.h"

namespace leadsync::producers {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kStoredErrorsPerRun = 1000;  // all are counted, the first ones are kept
// A batch: at most this long between heartbeats, which carry the run's progress and bring the
// operator's controls (a cancel stops the run within one), whatever the source's own paging.
constexpr auto kBatch = std::chrono::milliseconds(500);
// Changed keys gathered before they are written ahead (StateWriteAhead), in one statement each.
constexpr std::size_t kWriteAheadKeys = 2'000;

// How a run stopped before its end.
struct Stopped {
  enum class Why { kCancelled, kPaused, kLost } why;
};

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
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
        store_(*conn_, config.runs.heartbeat_interval),
        batch_(std::min<std::chrono::milliseconds>(kBatch, config.runs.heartbeat_interval)) {
    report_.source = source.name;
  }

  // Seconds since `from` (for the debug log's phase durations).
  static double since(Clock::time_point from) { return std::chrono::duration<double>(Clock::now() - from).count(); }

  RunReport execute(std::unique_ptr<SourceAdapter> adapter) {
    const auto started = Clock::now();
    try {
      const auto trigger = options_.state == StateUse::kFull ? common::RunTrigger::kFull : options_.trigger;
      run_ = store_.claim(source_.name, trigger);
      spdlog::debug("source {}: phase claim {:.3f} s", source_.name, since(started));
      report_.run_id = run_.run_id;
      report_.resumed_from = run_.resumed_from;
      common::RunEnd end;
      try {
        process(*adapter);
        end.status = common::RunStatus::kCompleted;
        if (const auto at = adapter->checkpoint()) end.checkpoint = position(at->value).text();
      } catch (const Stopped& s) {
        end.status = common::RunStatus::kCancelled;
        if (s.why == Stopped::Why::kLost) {
          report_.status = common::RunStatus::kFailed;
          report_.message = "the run was marked failed by another process (no heartbeat for too long); stopped";
          store_.release(run_);
          return done(started);
        }
        report_.paused = s.why == Stopped::Why::kPaused;
        report_.message = report_.paused ? "paused" : "cancelled by an operator";
        if (s.why == Stopped::Why::kCancelled) end.checkpoint = "";  // a cancelled read is not resumed
      } catch (const std::exception& e) {
        end.status = common::RunStatus::kFailed;
        end.error = common::redact(e.what());
        report_.message = end.error;
      }
      report_.status = end.status;
      const auto finishing = Clock::now();
      finish(std::move(end));
      spdlog::debug("source {}: phase finish {:.3f} s (run {:.3f} s)", source_.name, since(finishing), since(started));
    } catch (const std::exception& e) {
      // The run could not even be recorded (database down, another run active).
      report_.status = common::RunStatus::kFailed;
      report_.message = common::redact(e.what());
    }
    return done(started);
  }

 private:
  RunReport done(Clock::time_point started) {
    report_.seconds = std::chrono::duration<double>(Clock::now() - started).count();
    record_metrics();
    return report_;
  }

  // Keeps the run's heartbeat fresh through one long step (see runs_keepalive.h).
  std::unique_ptr<common::RunKeepalive> keepalive() const {
    return std::make_unique<common::RunKeepalive>(config_.postgres.url, run_.run_id,
                                                  config_.runs.heartbeat_interval / 2);
  }

  common::RunCounters counters() const {
    return {static_cast<int64_t>(report_.rows_read),       static_cast<int64_t>(report_.new_records),
            static_cast<int64_t>(report_.changed_records), static_cast<int64_t>(report_.unchanged_records),
            static_cast<int64_t>(report_.deleted_records), static_cast<int64_t>(report_.failed_records),
            static_cast<int64_t>(report_.events_published)};
  }

  ReadPosition position(std::string at) const {
    ReadPosition p;
    p.at = std::move(at);
    p.mapping = mapping_;
    p.snapshot = snapshot_hash_;
    p.mode = mode_;
    p.publish_all = publish_all_;
    p.valid_rows = valid_rows_;
    p.unreadable_rows = unreadable_rows_;
    return p;
  }

  // Between records: every batch a heartbeat with progress that also brings the operator's
  // controls; every checkpoint interval, a checkpoint.
  void at_boundary() {
    const auto now = Clock::now();
    // The first records taken show at once (before issue 12's state load in the background, the
    // load's second or so before the read made the first beat come early in the read by accident).
    if (now - last_beat_ >= batch_ || (!progress_shown_ && report_.rows_read > 0)) {
      if (report_.rows_read > 0) progress_shown_ = true;
      last_beat_ = now;
      common::RunProgress progress;
      progress.rows_done = static_cast<int64_t>(report_.rows_read);
      progress.percent = read_progress_ * 100.0;
      progress.message = run_.resumed_from.empty() ? "reading" : "reading, resumed from run " + run_.resumed_from;
      switch (store_.heartbeat(run_, progress, counters())) {
        case common::RunControl::kContinue: break;
        case common::RunControl::kCancel: throw Stopped{Stopped::Why::kCancelled};
        case common::RunControl::kPause:
          save_checkpoint();
          throw Stopped{Stopped::Why::kPaused};
        case common::RunControl::kLost: throw Stopped{Stopped::Why::kLost};
      }
    }
    if (now - last_checkpoint_ >= checkpoint_every_) save_checkpoint();
  }

  // Stores where the read stands and the keys read since the last checkpoint, once Kafka holds
  // every event published before it: a run resuming here re-reads nothing and loses nothing.
  //
  // A checkpoint stops the read: Kafka's pipeline drains and the keys go to PostgreSQL. Hence every
  // 10 s by default (runs.checkpoint_interval): every 2 s, a 300,000-row sheet's producer took
  // 17–23 s instead of 10 s, and its 1%-changed re-read 5.6 s instead of 2.6 s (bench/run
  // --scenarios S1,S2 --rows 300000, issue 15).
  void save_checkpoint() {
    last_checkpoint_ = Clock::now();
    const auto& at = read_at_;
    if (!at) return;
    // Waiting for Kafka and storing the keys can outlast 3 heartbeat intervals on a loaded machine.
    const auto alive = keepalive();
    wait_for_acks();
    pqxx::work tx(*conn_);
    state_.save_progress(tx, source_.name, run_.run_id);
    store_.save_checkpoint(tx, run_, position(at->value).text());
    tx.commit();
  }

  void publish(common::ChangeEvent& event, std::optional<int64_t> source_version = std::nullopt) {
    const auto version = source_version.value_or(version_);
    event.set_run_id(report_.run_id);
    event.set_source_version(version);
    event.set_observed_at_micros(now_micros());
    event.set_event_id(common::make_event_id(source_.name, entity_.name, event.key(), version, event.checksum()));
    event.SerializeToString(&buffer_);
    message_key_.assign(entity_.name).append("/").append(event.key());
    producer_.produce(config_.kafka.topic, message_key_, buffer_);
    ++report_.events_published;
  }

  void publish_delete(const std::string& key, std::optional<int64_t> source_version = std::nullopt) {
    common::ChangeEvent event;
    event.set_source(source_.name);
    event.set_entity(entity_.name);
    event.set_origin(source_.name);
    event.set_key(key);
    event.set_op(leadsync::v1::OP_DELETE);
    event.set_checksum(0);
    publish(event, source_version);
    ++report_.deleted_records;
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
  std::string full_publish_reason(const common::LastCompletedRun& last) {
    if (options_.state == StateUse::kFull || run_.trigger == common::RunTrigger::kFull) {
      return "a full publish was requested (--full)";
    }
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

  // Continues the interrupted read the claim handed over, if it was taken under this mapping and
  // target and the adapter can continue it. Only when this run needs no full publish: a target
  // truncated since would miss what was read before the checkpoint.
  bool try_resume(SourceAdapter& adapter, const std::string& full_reason) {
    if (run_.checkpoint.empty()) return false;
    const auto p = ReadPosition::parse(run_.checkpoint);
    std::string why;
    if (!p) {
      why = "its checkpoint is not one this version understands";
    } else if (p->mapping != mapping_) {
      why = "the mapping or the target changed since";
    } else if (!full_reason.empty()) {
      why = full_reason;
    } else if (!adapter.resume(Checkpoint{p->at})) {
      why = "the source cannot continue there (it changed since, or cannot resume)";
    } else {
      mode_ = p->mode;
      snapshot_hash_ = p->snapshot;
      publish_all_ = p->publish_all;
      valid_rows_ = p->valid_rows;
      unreadable_rows_ = p->unreadable_rows;
      spdlog::info("source {}: run {} resumes the read of run {}", source_.name, run_.run_id, run_.resumed_from);
      return true;
    }
    spdlog::info("source {}: not resuming run {}: {}; reading from the start", source_.name, run_.resumed_from, why);
    report_.resumed_from.clear();
    return false;
  }

  // Starts the read: resumed, incremental, or the whole snapshot. False: the snapshot is byte for
  // byte the last completed run's, and the run is complete without parsing it.
  bool start_read(SourceAdapter& adapter, const common::LastCompletedRun& last, const std::string& full_reason) {
    if (try_resume(adapter, full_reason)) return true;
    {
      // A fresh read: nothing of an earlier interrupted one may count, now or after a crash of this run.
      pqxx::work tx(*conn_);
      SourceState::clear_progress(tx, source_.name);
      store_.drop_resume(tx, run_);
      tx.commit();
    }
    publish_all_ = !full_reason.empty();
    if (full_reason.empty() && !last.checkpoint.empty()) {
      const auto cursor = ReadPosition::parse(last.checkpoint);
      if (cursor && cursor->mapping == mapping_ && adapter.changes_since(Checkpoint{cursor->at})) {
        mode_ = ReadMode::kIncremental;
        report_.incremental = true;
        return true;
      }
    }
    const auto raw = adapter.open();
    // Rules that read the clock (age_days) can change a score while the snapshot stays the same.
    const bool clock_bound = entity_.rules && entity_.rules->uses_clock();
    snapshot_hash_ = raw.empty() || clock_bound ? "" : raw + ":" + mapping_;
    if (full_reason.empty() && !snapshot_hash_.empty() && snapshot_hash_ == last.snapshot_hash) {
      // Byte for byte the snapshot of the last completed run, under the same mapping and target:
      // every record stored from that run is unchanged, and none needs parsing.
      pqxx::work tx(*conn_);
      report_.unchanged_records = tx.exec_params1("SELECT count(*) FROM leadsync.source_state WHERE source = $1",
                                                  source_.name)[0].as<uint64_t>();
      tx.commit();
      report_.snapshot_unchanged = true;
      report_.message = "snapshot unchanged since the last completed run (not parsed)";
      return false;
    }
    return true;
  }

  void process(SourceAdapter& adapter) {
    auto phase = Clock::now();
    version_ = store_.next_version(run_, now_micros());
    target_ = read_target_stamp(*conn_, config_, entity_);
    record_rule_set(*conn_, run_.run_id, entity_);
    mapping_ = mapping_fingerprint(source_, entity_, target_.stamp);
    const auto last = store_.last_completed(source_.name);
    const auto full_reason = full_publish_reason(last);
    spdlog::debug("source {}: phase prepare {:.3f} s", source_.name, since(phase));
    phase = Clock::now();
    // The stored state loads in a thread of its own while this one hashes the snapshot and opens
    // the read (issue 12: at 1M keys the load alone took about 1 s before the read began). The
    // keep-alive covers the run until the load is in: the run cannot heartbeat while it waits.
    auto alive_while_loading = keepalive();
    auto loading = std::make_unique<StateLoad>(state_, config_.postgres.url, source_.name);
    if (!start_read(adapter, last, full_reason)) return;  // the load is cancelled
    spdlog::debug("source {}: phase start_read (snapshot hash) {:.3f} s", source_.name, since(phase));
    phase = Clock::now();
    Mapper mapper(source_, entity_, adapter);
    for (const auto& w : adapter.column_warnings()) warnings_.push_back(w);
    if (!mapper.unmapped_columns().empty()) {
      std::string list;
      for (const auto& c : mapper.unmapped_columns()) list += (list.empty() ? "'" : ", '") + c + "'";
      warnings_.push_back("columns not mapped to any field: " + list);
    }
    if (publish_all_) warnings_.push_back("every record was published: " + (full_reason.empty() ? std::string(
        "the interrupted run this one resumes was publishing every record") : full_reason));
    for (const auto& w : warnings_) spdlog::warn("source {}: {}", source_.name, w);
    producer_.warm_up(config_.kafka.topic);
    {
      const double waited = loading->wait();
      loading.reset();
      if (!report_.resumed_from.empty()) state_.load_progress(*conn_, source_.name);
      alive_while_loading.reset();
      // debug, not info: a --once run prints nothing on stderr unless something needs attention.
      spdlog::debug("source {}: state of {} key(s) loaded ({:.1f} MiB in memory) {:.3f} s after the read's start, "
                    "waited {:.3f} s for it", source_.name, state_.known(),
                    static_cast<double>(state_.memory_bytes()) / (1024.0 * 1024.0), since(phase), waited);
    }
    if (publish_all_) state_.ignore_checksums();
    last_checkpoint_ = Clock::now();

    read_at_ = adapter.checkpoint();
    read_progress_ = adapter.progress();
    phase = Clock::now();
    {
      // Read and mapped ahead on both cores; taken here in read order, a batch at a time. Only
      // between batches does the run stand exactly where a batch's checkpoint says.
      ReadAhead ahead(adapter, mapper, ReadAhead::default_threads());
      for (;;) {
        at_boundary();
        auto* batch = ahead.next();
        if (!batch) break;
        for (std::size_t i = 0; i < batch->count; ++i) {
          // The state's cache misses overlapped: a few records ahead, the key's index slot, its
          // entry, its bytes (issue 12: at a million keys each was a miss, one after another).
          prefetch_state(*batch, i + 12, 0);
          prefetch_state(*batch, i + 8, 1);
          prefetch_state(*batch, i + 4, 2);
          take(batch->items[i]);
        }
        if (state_.unwritten() >= kWriteAheadKeys) write_ahead();
        read_at_ = batch->checkpoint;
        read_progress_ = batch->progress;
      }
    }
    spdlog::debug("source {}: phase read {:.3f} s", source_.name, since(phase));
    phase = Clock::now();
    // An incremental read names its deletes; what it did not read is not gone.
    if (mode_ == ReadMode::kSnapshot) publish_deletes();
    const auto alive = keepalive();
    wait_for_acks();
    spdlog::debug("source {}: phase deletes and acks {:.3f} s", source_.name, since(phase));
    // Publishing is done; finish() records it (published_at) with the run's state, in one transaction.
  }

  void prefetch_state(const ReadBatch& batch, std::size_t i, int step) const {
    if (i < batch.count && batch.items[i].kind == ReadItem::Kind::kMapped) state_.prefetch(batch.items[i].event.key(), step);
  }

  // The changed checksums so far go to the transaction that will complete the run (see StateWriteAhead).
  void write_ahead() {
    if (!write_ahead_) {
      write_ahead_ = std::make_unique<StateWriteAhead>(config_.postgres.url, source_.name, version_, report_.run_id);
    }
    std::string keys, checksums;
    state_.take_unwritten(keys, checksums);
    write_ahead_->write(std::move(keys), std::move(checksums));
  }

  // One record, in read order.
  void take(ReadItem& item) {
    const auto& record = item.record;
    switch (item.kind) {
      case ReadItem::Kind::kBlank: return;
      case ReadItem::Kind::kDelete:
        ++report_.rows_read;
        read_delete(record);
        return;
      case ReadItem::Kind::kUnreadable:
        ++report_.rows_read;
        reject({record.position, "", "", "", *item.parse_error});
        ++unreadable_rows_;
        // A malformed line must not read as a deletion of the record it holds.
        state_.keep_any_of(record.cells);
        return;
      case ReadItem::Kind::kRejected:
        ++report_.rows_read;
        reject(item.error);
        state_.keep(item.error.key);
        return;
      case ReadItem::Kind::kMapped: break;
    }
    ++report_.rows_read;
    auto& event = item.event;
    std::size_t first_line = 0;
    switch (state_.observe(event.key(), event.checksum(), record.position, first_line)) {
      case SourceState::Seen::kDuplicate:
        reject({record.position, event.key(), source_.key_column, event.key(),
                "duplicate key '" + event.key() + "' (first seen at line " + std::to_string(first_line) +
                    "); this row is skipped"});
        return;
      case SourceState::Seen::kUnchanged:
        ++report_.unchanged_records;
        ++valid_rows_;
        return;
      case SourceState::Seen::kChanged:
        ++report_.changed_records;
        break;
      case SourceState::Seen::kNew:
        ++report_.new_records;
        break;
    }
    ++valid_rows_;
    publish(event, record.source_version);
  }

  void read_delete(const SourceRecord& record) {
    if (record.key.empty()) {
      reject({record.position, "", "", "", "the source reported a delete without naming the record's key"});
      return;
    }
    state_.remove(record.key, record.position);
    publish_delete(record.key, record.source_version);
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
    for (const auto& key : gone) publish_delete(key);
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

  void finish(common::RunEnd end) {
    std::string message = report_.message;
    for (const auto& w : warnings_) message += (message.empty() ? "" : "; ") + w;
    if (report_.failed_records > 0) {
      message += (message.empty() ? "" : "; ") + std::to_string(report_.failed_records) +
                 " record(s) rejected, see leadsync.run_errors";
    }
    end.counters = counters();
    end.snapshot_hash = snapshot_hash_;
    end.target_stamp = target_.stamp;
    const auto alive = keepalive();
    // The checksums written ahead are in this transaction; a run that does not complete rolls them back.
    pqxx::work* ahead = nullptr;
    if (write_ahead_ && end.status == common::RunStatus::kCompleted) {
      std::string why;
      ahead = write_ahead_->finish(why);
      if (!ahead) {
        spdlog::warn("source {}: the state written ahead was lost ({}); writing it all now", source_.name,
                     common::redact(why));
        state_.unwrite_all();
      }
    }
    if (!ahead) write_ahead_.reset();
    try {
      std::optional<pqxx::work> own;
      pqxx::work& tx = ahead ? *ahead : own.emplace(*conn_);
      // The state moves with the run's completion in one transaction: both or neither.
      if (end.status == common::RunStatus::kCompleted) {
        state_.write(tx, source_.name, version_, report_.run_id);
        SourceState::clear_progress(tx, source_.name);
      }
      std::string problem;
      if (!write_run_errors(tx, source_.name, run_.run_id, errors_, problem)) {
        message += (message.empty() ? "" : "; ") +
                   std::string("the rejected records' details could not be stored: ") + problem;
      }
      end.message = common::storable_text(common::redact(message), 8000);
      // A completed end is the end of publishing: the run stays `running` ("publishing done,
      // applying") until the workers applied every event, and this runner frees the source now.
      if (!store_.finish(tx, run_, end)) {
        // Marked failed meanwhile (stale heartbeat): nothing of this run may be stored as done.
        tx.abort();
        write_ahead_.reset();
        store_.release(run_);
        report_.status = common::RunStatus::kFailed;
        report_.message = "the run was marked failed by another process before it could finish";
        return;
      }
      tx.commit();
      write_ahead_.reset();
      store_.release(run_);
      report_.message = end.message;
    } catch (const std::exception& e) {
      write_ahead_.reset();  // rolled back
      const auto why = common::redact("the run's outcome could not be recorded: " + std::string(e.what()));
      report_.status = common::RunStatus::kFailed;
      report_.message = why;
      try {
        store_.finish(run_, common::RunStatus::kFailed, counters(), why, why);
      } catch (const std::exception& again) {
        // The connection itself is gone: the session's end frees the source (R3).
        spdlog::error("source {}: run {} could not be marked failed: {}", source_.name, run_.run_id, again.what());
      }
    }
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
  common::RunStore store_;
  std::chrono::milliseconds batch_;
  common::ClaimedRun run_;
  RunReport report_;
  int64_t version_ = 0;
  TargetStamp target_;
  std::string mapping_;
  std::string snapshot_hash_;
  ReadMode mode_ = ReadMode::kSnapshot;
  bool publish_all_ = false;
  std::string buffer_;
  std::string message_key_;
  std::optional<Checkpoint> read_at_;  // where the read stands after the records taken so far
  double read_progress_ = 0;
  std::vector<std::string> warnings_;
  std::vector<RowError> errors_;
  SourceState state_;
  std::unique_ptr<StateWriteAhead> write_ahead_;  // from the first kWriteAheadKeys changed keys on
  uint64_t valid_rows_ = 0;       // mapped records with a key seen once: only these count as the source's content
  uint64_t unreadable_rows_ = 0;  // rows the source could not parse (their keys unknown)
  Clock::time_point last_beat_ = Clock::now();
  bool progress_shown_ = false;  // a heartbeat carried rows read
  Clock::time_point last_checkpoint_ = Clock::now();
  const std::chrono::milliseconds checkpoint_every_ =
      options_.checkpoint_every.value_or(config_.runs.checkpoint_interval);
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
