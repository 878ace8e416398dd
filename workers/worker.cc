#include "workers/worker.h"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <thread>
#include <unordered_map>

#include "common/errors.h"
#include "common/kafka.h"
#include "common/mapping.h"
#include "common/pg.h"
#include "workers/collapse.h"
#include "workers/metrics.h"
#include "workers/targets/entity_applier.h"
#include "workers/targets/identity.h"
#include "workers/retry.h"
#include "workers/validate.h"

namespace leadsync::workers {
namespace {

using Clock = std::chrono::steady_clock;
using common::ErrorClass;
using TopicPartition = std::pair<std::string, int32_t>;

int64_t wall_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// One consumed record on its way through a batch.
struct Record {
  std::unique_ptr<RdKafka::Message> message;
  common::ChangeEvent event;
  int attempt = 0;  // 0 on the main topic, N after N failed attempts
  std::optional<Failure> failure;
};

// Raised out of a batch when the database itself is unreachable: nothing is wrong with the records.
class DatabaseDown : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace

class Worker::Impl {
 public:
  Impl(const common::Config& config, common::Telemetry& telemetry)
      : config_(config),
        telemetry_(telemetry),
        metrics_(telemetry.registry()),
        tiers_(config.kafka),
        producer_(config.kafka, {{"linger.ms", "1"}}),
        consumer_(config.kafka, config.kafka.group) {
    consumer_.set_hooks([this](const auto& partitions) { on_assign(partitions); },
                        [this](const auto& partitions) { on_revoke(partitions); });
    std::vector<std::string> topics{config.kafka.topic};
    for (int tier = 1; tier <= config.kafka.retry.attempts; ++tier) topics.push_back(config.kafka.retry_topic(tier));
    consumer_.subscribe(topics);
  }

  void run(const std::atomic<bool>& stop) {
    spdlog::info("worker: consuming {} and {} retry tier(s) as group {}", config_.kafka.topic,
                 config_.kafka.retry.attempts, config_.kafka.group);
    connect_database(stop);
    while (!stop.load()) {
      telemetry_.heartbeat();
      resume_due_partitions();
      if (Clock::now() >= next_lag_sample_) {
        metrics_.lag.Set(static_cast<double>(consumer_.lag()));
        next_lag_sample_ = Clock::now() + std::chrono::seconds(5);
      }
      poll_batch(stop);
      if (!batch_.empty()) process_batch(stop);
    }
    // The batch in hand was applied by the last iteration; push its offsets and leave the group.
    consumer_.commit();
    consumer_.close();
    producer_.flush(std::chrono::seconds(10));
    telemetry_.set_ready(false);
    spdlog::info("worker: stopped cleanly");
  }

 private:
  // ------------------------------------------------------------------ consuming

  void poll_batch(const std::atomic<bool>& stop) {
    const auto max_batch = static_cast<std::size_t>(config_.worker.max_batch);
    std::optional<Clock::time_point> deadline;
    while (batch_.size() < max_batch && !stop.load()) {
      int timeout_ms = 100;
      if (deadline) {
        timeout_ms = static_cast<int>(
            std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count());
        if (timeout_ms <= 0) break;
      }
      auto msg = consumer_.consume(timeout_ms);
      if (!msg || msg->err() == RdKafka::ERR__TIMED_OUT) {
        if (!deadline) return;  // idle: let the loop beat its heartbeat
        continue;
      }
      if (msg->err() != RdKafka::ERR_NO_ERROR) {
        spdlog::warn("kafka: {}", msg->errstr());
        continue;
      }
      if (accept(std::move(msg)) && !deadline) {
        deadline = Clock::now() + std::chrono::milliseconds(config_.worker.max_wait_ms);
      }
    }
  }

  // Takes a message into the batch, or holds it back when it belongs to a partition that waits.
  bool accept(std::unique_ptr<RdKafka::Message> msg) {
    const TopicPartition tp{msg->topic_name(), msg->partition()};
    if (held_.count(tp)) return false;  // re-read after the partition resumes
    Record r;
    r.attempt = tiers_.attempt_of(*msg);
    if (const auto due_ms = tiers_.not_before_ms(*msg); due_ms > 0) {
      const auto wait_ms = due_ms - wall_micros() / 1000;
      if (wait_ms > 0) {
        // A tier's records share one delay, so its head is the earliest due: wait on it without
        // sleeping the poll loop, by pausing the partition and rewinding to the head.
        hold(tp, msg->offset(), Clock::now() + std::chrono::milliseconds(wait_ms));
        return false;
      }
    }
    if (!r.event.ParseFromArray(msg->payload(), static_cast<int>(msg->len()))) {
      r.failure = Failure{ErrorClass::kPermanent, "decode", "payload is not a leadsync.v1.ChangeEvent", ""};
    } else if (auto problem = validate_event(config_, r.event); !problem.empty()) {
      r.failure = Failure{ErrorClass::kPermanent, "validation", problem, field_named_in(problem)};
    }
    r.message = std::move(msg);
    metrics_.consumed(r.message->topic_name()).Increment();
    batch_.push_back(std::move(r));
    return true;
  }

  static std::string field_named_in(const std::string& problem) {
    const auto a = problem.find("field '");
    if (a == std::string::npos) return "";
    const auto b = problem.find('\'', a + 7);
    return b == std::string::npos ? "" : problem.substr(a + 7, b - a - 7);
  }

  void hold(const TopicPartition& tp, int64_t offset, Clock::time_point until) {
    consumer_.pause(tp.first, tp.second);
    consumer_.seek(tp.first, tp.second, offset);
    held_[tp] = until;
    // Records after the head in this partition that are already in the batch stay; nothing after
    // the head is taken until it resumes, so the partition's processed records remain a prefix.
  }

  void resume_due_partitions() {
    const auto now = Clock::now();
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->second <= now) {
        consumer_.resume(it->first.first, it->first.second);
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
  }

  void on_assign(const common::KafkaConsumer::PartitionList& partitions) {
    metrics_.assigned.Increment(static_cast<double>(partitions.size()));
    telemetry_.set_ready(db_up_);
  }

  void on_revoke(const common::KafkaConsumer::PartitionList& partitions) {
    std::set<TopicPartition> gone;
    for (const auto* p : partitions) gone.insert({p->topic(), p->partition()});
    // Records of revoked partitions not yet applied are dropped: their offsets were not stored, so
    // the new owner reads them again.
    std::erase_if(batch_, [&](const Record& r) { return gone.count({r.message->topic_name(), r.message->partition()}); });
    for (const auto& tp : gone) held_.erase(tp);
    metrics_.assigned.Decrement(static_cast<double>(partitions.size()));
    consumer_.commit();
  }

  // ------------------------------------------------------------------ applying

  void process_batch(const std::atomic<bool>& stop) {
    const auto started = Clock::now();
    std::map<std::string, ApplyCounts> per_run;
    for (;;) {
      try {
        per_run = apply_batch();
        break;
      } catch (const DatabaseDown& e) {
        spdlog::error("worker: database unavailable ({}); pausing consumption until it is back", e.what());
        wait_for_database(stop);
        if (stop.load() && !db_up_) return;  // not applied, offsets not stored: replayed later
      }
    }
    forward_failures(per_run);
    store_offsets();
    observe(started, per_run);
    batch_.clear();
  }

  // Applies every good record of the batch in one transaction; records that fail are isolated by
  // splitting and marked. Returns the counts per run (failures are counted after forwarding).
  std::map<std::string, ApplyCounts> apply_batch() {
    std::vector<Record*> good;
    std::vector<const common::ChangeEvent*> events;
    for (auto& r : batch_) {
      if (r.failure) continue;
      good.push_back(&r);
      events.push_back(&r.event);
    }
    std::map<std::string, ApplyCounts> per_run;
    try {
      pqxx::work tx(*conn_);
      resolve_identities(tx, good);
      const auto newest = newest_per_key(events, per_run);
      for (const auto& [entity, indexes] : newest) {
        std::vector<Record*> records;
        records.reserve(indexes.size());
        for (const auto i : indexes) records.push_back(good[i]);
        apply_isolating(tx, appliers_.at(entity), records, per_run);
      }
      write_run_stats(tx, per_run);
      tx.commit();
    } catch (const DatabaseDown&) {
      throw;
    } catch (const std::exception& e) {
      if (common::classify_pg_error(e) == ErrorClass::kInfrastructure) throw DatabaseDown(e.what());
      throw;
    }
    return per_run;
  }

  // Re-keys events that belong to a record known under another key (R1), before the batch is
  // collapsed per key, so that both spellings of one record meet in one row.
  void resolve_identities(pqxx::transaction_base& tx, const std::vector<Record*>& records) {
    for (const auto& [name, resolver] : resolvers_) {
      if (!resolver.enabled()) continue;
      std::vector<common::ChangeEvent*> events;
      for (auto* r : records) {
        if (r->event.entity() == name) events.push_back(&r->event);
      }
      for (const auto& link : resolver.resolve(tx, events)) {
        if (link.field.empty()) continue;
        metrics_.identity_links.Increment();
        spdlog::info("worker: {} key '{}' linked to existing record '{}' by {} = '{}'", name, link.from_key,
                     link.to_key, link.field, link.value);
      }
    }
  }

  void apply_isolating(pqxx::dbtransaction& tx, const EntityApplier& applier, std::vector<Record*>& records,
                       std::map<std::string, ApplyCounts>& per_run) {
    if (records.empty()) return;
    std::vector<const common::ChangeEvent*> events;
    events.reserve(records.size());
    for (auto* r : records) events.push_back(&r->event);
    // A savepoint per attempt, so that a failing piece leaves the batch's transaction usable.
    // (Explicit SQL: libpqxx 6.4's subtransaction left the transaction aborted after an error.)
    tx.exec("SAVEPOINT leadsync_apply");
    try {
      auto counts = applier.apply(tx, events);
      tx.exec("RELEASE SAVEPOINT leadsync_apply");
      for (auto& [run, c] : counts) per_run[run] += c;
      return;
    } catch (const std::exception& e) {
      const auto cls = common::classify_pg_error(e);
      if (cls == ErrorClass::kInfrastructure) throw DatabaseDown(e.what());
      // ROLLBACK TO keeps the savepoint; release it so that splits do not stack savepoints.
      tx.exec("ROLLBACK TO SAVEPOINT leadsync_apply");
      tx.exec("RELEASE SAVEPOINT leadsync_apply");
      if (records.size() == 1) {
        records[0]->failure = Failure{cls, "database", first_line(e.what()), ""};
        return;
      }
    }
    // A data error in a batch: split until the bad records are found, so the good ones apply.
    std::vector<Record*> left(records.begin(), records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2));
    std::vector<Record*> right(records.begin() + static_cast<std::ptrdiff_t>(records.size() / 2), records.end());
    apply_isolating(tx, applier, left, per_run);
    apply_isolating(tx, applier, right, per_run);
  }

  static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

  void write_run_stats(pqxx::transaction_base& tx, const std::map<std::string, ApplyCounts>& per_run) {
    for (const auto& [run, c] : per_run) {
      if (run.empty()) continue;
      tx.exec_params(
          "INSERT INTO leadsync.run_apply_stats (run_id, inserted, updated, deleted, unchanged, stale, failed) "
          "VALUES ($1, $2, $3, $4, $5, $6, $7)",
          run, c.inserted, c.updated, c.deleted, c.unchanged, c.stale, c.failed);
    }
  }

  // Sends each failed record to its next retry tier or to the dead-letter topic, and waits for
  // Kafka's acknowledgement before the batch's offsets may be stored.
  void forward_failures(std::map<std::string, ApplyCounts>& applied) {
    std::map<std::string, ApplyCounts> dead;
    bool any = false;
    for (auto& r : batch_) {
      if (!r.failure) continue;
      any = true;
      const auto route = tiers_.route(*r.failure, r.attempt);
      producer_.produce(route.topic, std::string_view(static_cast<const char*>(r.message->key_pointer()),
                                                      r.message->key_len()),
                        std::string_view(static_cast<const char*>(r.message->payload()), r.message->len()),
                        tiers_.headers(*r.message, *r.failure, route));
      if (route.dead_letter) {
        metrics_.dead_lettered(r.failure->error_class).Increment();
        dead[r.event.run_id()].failed++;
        spdlog::warn("worker: {} dead-lettered ({}: {}) from {}[{}]@{}",
                     r.message->key() ? *r.message->key() : std::string("(no key)"),
                     common::error_class_name(r.failure->error_class), r.failure->message, r.message->topic_name(),
                     r.message->partition(), r.message->offset());
      } else {
        metrics_.retried(route.tier).Increment();
      }
    }
    if (!any) return;
    const auto before = producer_.failed();
    if (!producer_.flush(std::chrono::minutes(3)) || producer_.failed() != before) {
      // Without the acknowledgement the offsets must not move. Exiting replays the batch from the
      // last stored offsets on restart, which the version guard makes harmless.
      throw std::runtime_error("forwarding failed records to retry/dead-letter topics was not acknowledged: " +
                               producer_.first_error());
    }
    if (std::none_of(dead.begin(), dead.end(), [](const auto& d) { return !d.first.empty(); })) return;
    try {
      pqxx::work tx(*conn_);
      write_run_stats(tx, dead);
      tx.commit();
    } catch (const std::exception& e) {
      spdlog::warn("worker: could not record dead-letter counts: {}", e.what());
    }
    for (auto& [run, c] : dead) applied[run].failed += c.failed;
  }

  void store_offsets() {
    std::map<TopicPartition, int64_t> next;
    for (const auto& r : batch_) {
      auto& n = next[{r.message->topic_name(), r.message->partition()}];
      n = std::max(n, r.message->offset() + 1);
    }
    for (const auto& [tp, offset] : next) consumer_.store_offset(tp.first, tp.second, offset);
  }

  void observe(Clock::time_point started, const std::map<std::string, ApplyCounts>& per_run) {
    metrics_.batch_seconds.Observe(std::chrono::duration<double>(Clock::now() - started).count());
    const auto now = wall_micros();
    for (const auto& r : batch_) {
      if (!r.failure && r.event.observed_at_micros() > 0) {
        metrics_.latency.Observe(static_cast<double>(now - r.event.observed_at_micros()) / 1e6);
      }
    }
    ApplyCounts total;
    for (const auto& [run, c] : per_run) total += c;
    metrics_.applied("inserted").Increment(static_cast<double>(total.inserted));
    metrics_.applied("updated").Increment(static_cast<double>(total.updated));
    metrics_.applied("deleted").Increment(static_cast<double>(total.deleted));
    metrics_.applied("unchanged").Increment(static_cast<double>(total.unchanged));
    metrics_.applied("stale").Increment(static_cast<double>(total.stale));
  }

  // ------------------------------------------------------------------ database availability

  bool try_connect() {
    try {
      conn_ = common::pg_connect(config_.postgres, "leadsync-worker");
      if (appliers_.empty()) {
        for (const auto& [name, entity] : config_.entities) {
          appliers_.emplace(name, EntityApplier(config_, entity));
          resolvers_.emplace(name, IdentityResolver(config_, entity));
        }
      }
      db_up_ = true;
      metrics_.database_up.Set(1);
      return true;
    } catch (const std::exception& e) {
      spdlog::warn("worker: cannot connect to PostgreSQL at {}: {}", common::redact_url(config_.postgres.url),
                   first_line(e.what()));
      db_up_ = false;
      metrics_.database_up.Set(0);
      return false;
    }
  }

  void connect_database(const std::atomic<bool>& stop) {
    if (!try_connect()) wait_for_database(stop);
  }

  // Pauses every partition and keeps serving the group (rebalances, heartbeats) while it retries
  // the connection with exponential backoff and jitter. Records are not touched.
  void wait_for_database(const std::atomic<bool>& stop) {
    db_up_ = false;
    metrics_.database_up.Set(0);
    telemetry_.set_ready(false);
    consumer_.pause_all();
    std::mt19937_64 rng(std::random_device{}());
    int64_t backoff_ms = 250;
    auto next_try = Clock::now();
    while (!stop.load()) {
      telemetry_.heartbeat();
      auto msg = consumer_.consume(100);
      if (msg && msg->err() == RdKafka::ERR_NO_ERROR) {
        // A partition assigned during the outage: hold it until the database is back.
        consumer_.pause(msg->topic_name(), msg->partition());
        consumer_.seek(msg->topic_name(), msg->partition(), msg->offset());
      }
      if (Clock::now() < next_try) continue;
      if (try_connect()) break;
      const auto jitter = static_cast<int64_t>(rng() % static_cast<uint64_t>(backoff_ms / 2 + 1));
      next_try = Clock::now() + std::chrono::milliseconds(backoff_ms + jitter);
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
    }
    if (!db_up_) return;
    spdlog::info("worker: database is back; resuming");
    consumer_.resume_all();
    for (const auto& [tp, until] : held_) consumer_.pause(tp.first, tp.second);  // tiers keep waiting
    telemetry_.set_ready(consumer_.assignment_size() > 0);
  }

  const common::Config& config_;
  common::Telemetry& telemetry_;
  WorkerMetrics metrics_;
  RetryTiers tiers_;
  // Destruction order: the consumer goes first (it leaves the group), then the producer flushes.
  common::KafkaProducer producer_;
  common::KafkaConsumer consumer_;
  std::unique_ptr<pqxx::connection> conn_;
  std::map<std::string, EntityApplier> appliers_;
  std::map<std::string, IdentityResolver> resolvers_;
  std::vector<Record> batch_;
  std::map<TopicPartition, Clock::time_point> held_;  // partitions paused until a time
  bool db_up_ = false;
  Clock::time_point next_lag_sample_ = Clock::now();
};

Worker::Worker(const common::Config& config, common::Telemetry& telemetry)
    : impl_(std::make_unique<Impl>(config, telemetry)) {}
Worker::~Worker() = default;
void Worker::run(const std::atomic<bool>& stop) { impl_->run(stop); }

}  // namespace leadsync::workers
