// Wires the worker's parts together (design.md §4): the consume loop fills a batch, the apply
// target applies it, the forwarder sends its failed records to the retry tiers or the dead-letter
// topic, and only then are the batch's offsets stored. While the target is unavailable every
// partition is paused and the same batch is tried again after a backoff.
#include "workers/worker.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <stdexcept>

#include "workers/consume_loop.h"
#include "workers/forwarder.h"
#include "workers/lanes.h"
#include "workers/metrics.h"
#include "workers/retry.h"
#include "workers/targets/postgres_target.h"

namespace leadsync::workers {
namespace {

using Clock = std::chrono::steady_clock;

int64_t wall_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

class Worker::Impl {
 public:
  Impl(const common::Config& config, common::Telemetry& telemetry, const TargetFactory& make_target)
      : config_(config),
        telemetry_(telemetry),
        metrics_(telemetry.registry()),
        tiers_(config.kafka),
        target_(make_target(metrics_, telemetry.registry())),
        forwarder_(config.kafka, tiers_, metrics_),
        loop_(make_loop()) {}

  void run(const std::atomic<bool>& stop) {
    spdlog::info("worker: consuming {} and {} retry tier(s) as group {}", config_.kafka.topic,
                 config_.kafka.retry.attempts, config_.kafka.group);
    if (!target_->connect()) wait_for_target(stop, "the target is not reachable");
    while (!stop.load()) {
      try {
        telemetry_.heartbeat();
        loop_->resume_due();
        loop_->sample_lag();
        loop_->poll(stop);
        if (!loop_->batch().empty()) process_batch(stop);
      } catch (const ConsumerFenced& e) {
        rejoin(e);
      }
    }
    // The batch in hand was applied by the last iteration; push its offsets and leave the group.
    loop_->close();
    forwarder_.flush(std::chrono::seconds(10));
    telemetry_.set_ready(false);
    spdlog::info("worker: stopped cleanly");
  }

 private:
  std::unique_ptr<ConsumeLoop> make_loop() {
    auto loop = std::make_unique<ConsumeLoop>(config_, tiers_, metrics_);
    loop->on_assigned([this] { telemetry_.set_ready(target_->available()); });
    return loop;
  }

  // New consumers after the old ones were fenced; the batch in hand goes with them (its offsets
  // were not stored: it is read again). Fenced again within a minute means that another running
  // worker has this one's instance id: this one stops, naming it.
  void rejoin(const ConsumerFenced& e) {
    const auto now = Clock::now();
    if (last_fenced_ && now - *last_fenced_ < std::chrono::minutes(1)) {
      throw std::runtime_error(std::string(e.what()) + " (twice within a minute: is worker.instance_id '" +
                               config_.worker.instance_id + "' used by another running worker?)");
    }
    last_fenced_ = now;
    spdlog::error("worker: {}; joining the group again with new consumers", e.what());
    telemetry_.set_ready(false);
    loop_.reset();
    loop_ = make_loop();
  }

  void process_batch(const std::atomic<bool>& stop) {
    const auto started = Clock::now();
    auto& batch = loop_->batch();
    RunCounts per_run;
    for (;;) {
      // Taken anew for each attempt: a rebalance while waiting drops the revoked partitions' records.
      std::vector<Record*> records;
      records.reserve(batch.size());
      for (auto& r : batch) records.push_back(&r);
      try {
        per_run = target_->apply(records);
        target_backoff_.reset();
        break;
      } catch (const TargetUnavailable& e) {
        const bool outage = e.kind() == Unavailability::kOutage;
        metrics_.target_unavailable(outage ? "outage" : "misfit").Increment();
        if (!wait_for_target(stop, e.what())) return;  // not applied, offsets not stored: replayed later
      }
    }
    const auto forwarded = forwarder_.forward(batch, std::chrono::minutes(3));
    const auto rewind = rewind_unacknowledged(forwarded);
    // The dead-letter counts and how far the partitions with failed records are done, before the
    // offsets are stored: reliably (a dead-letter count lost would leave its run open).
    for (;;) {
      try {
        target_->settle(forwarded.dead_lettered, rewind);
        break;
      } catch (const TargetUnavailable& e) {
        metrics_.target_unavailable(e.kind() == Unavailability::kOutage ? "outage" : "misfit").Increment();
        if (!wait_for_target(stop, e.what())) return;  // offsets not stored: read again, the applied part skipped
      }
    }
    for (const auto& [run, c] : forwarded.dead_lettered) per_run[run].failed += c.failed;
    observe(started, per_run);
    if (rewind.empty()) forward_backoff_.reset();
    loop_->finish_batch(rewind, rewind.empty() ? std::chrono::milliseconds(0) : forward_backoff_.next());
  }

  // A failed record whose forward Kafka did not acknowledge is not done: its partition's offset
  // stays before it and the partition is read again from there after a backoff (the records after
  // it are applied again, which the version guard makes harmless). Nothing is lost, and the worker
  // keeps serving its other partitions instead of exiting.
  std::map<TopicPartition, int64_t> rewind_unacknowledged(const ForwardResult& forwarded) {
    std::map<TopicPartition, int64_t> rewind;
    for (const auto* r : forwarded.unacknowledged) {
      auto [it, inserted] = rewind.emplace(r->partition(), r->offset());
      if (!inserted) it->second = std::min(it->second, r->offset());
    }
    if (!rewind.empty()) {
      metrics_.forward_failures.Increment(static_cast<double>(forwarded.unacknowledged.size()));
      spdlog::error("worker: {} failed record(s) could not be forwarded ({}); their partitions are read again",
                    forwarded.unacknowledged.size(), forwarded.first_error);
    }
    return rewind;
  }

  void observe(Clock::time_point started, const RunCounts& per_run) {
    const auto seconds = std::chrono::duration<double>(Clock::now() - started).count();
    metrics_.batch_seconds.Observe(seconds);
    const auto now = wall_micros();
    int64_t oldest = 0;
    for (const auto& r : loop_->batch()) {
      if (!r.failure && r.event->observed_at_micros() > 0) {
        metrics_.latency.Observe(static_cast<double>(now - r.event->observed_at_micros()) / 1e6);
        oldest = std::max(oldest, now - r.event->observed_at_micros());
      }
    }
    spdlog::debug("batch: {} records applied in {:.1f} ms, its oldest {:.1f} ms after observed_at",
                  loop_->batch().size(), seconds * 1e3, static_cast<double>(oldest) / 1e3);
    ApplyCounts total;
    for (const auto& [run, c] : per_run) total += c;
    metrics_.applied("inserted").Increment(static_cast<double>(total.inserted));
    metrics_.applied("updated").Increment(static_cast<double>(total.updated));
    metrics_.applied("deleted").Increment(static_cast<double>(total.deleted));
    metrics_.applied("unchanged").Increment(static_cast<double>(total.unchanged));
    metrics_.applied("stale").Increment(static_cast<double>(total.stale));
  }

  // Pauses every partition and keeps serving the group (rebalances, heartbeats) for a backoff with
  // jitter that grows while the target stays unavailable, reconnecting when the connection is gone.
  // Records are not touched. Returns false when stopped first.
  bool wait_for_target(const std::atomic<bool>& stop, const std::string& why) {
    telemetry_.set_ready(false);
    loop_->pause_all();
    auto wait = target_backoff_.next();
    spdlog::error("worker: target unavailable ({}); consumption paused, trying again in {} ms", why, wait.count());
    auto next_try = Clock::now() + wait;
    metrics_.backoff_active.Set(1);
    bool up = false;
    while (!stop.load()) {
      telemetry_.heartbeat();
      loop_->serve_paused(100);
      if (Clock::now() < next_try) continue;
      if ((up = target_->available() || target_->connect())) break;
      next_try = Clock::now() + target_backoff_.next();
    }
    metrics_.backoff_active.Set(0);
    if (!up) return false;
    spdlog::info("worker: trying the target again; consumption resumed");
    loop_->resume_all();
    telemetry_.set_ready(loop_->assignment_size() > 0);
    return true;
  }

  const common::Config& config_;
  common::Telemetry& telemetry_;
  WorkerMetrics metrics_;
  RetryTiers tiers_;
  std::unique_ptr<ApplyTarget> target_;
  // Destruction order: the consume loop goes first (it leaves the group), then the producer flushes.
  Forwarder forwarder_;
  std::unique_ptr<ConsumeLoop> loop_;
  std::optional<Clock::time_point> last_fenced_;
  Backoff target_backoff_{std::chrono::milliseconds(250), std::chrono::seconds(5)};
  Backoff forward_backoff_{std::chrono::milliseconds(500), std::chrono::seconds(30)};
};

Worker::Worker(const common::Config& config, common::Telemetry& telemetry)
    : Worker(config, telemetry, [&config](WorkerMetrics& metrics, prometheus::Registry&) -> std::unique_ptr<ApplyTarget> {
        if (config.worker.connections == 1) return std::make_unique<PostgresTarget>(config, metrics);
        std::vector<std::unique_ptr<ApplyTarget>> lanes;
        for (int i = 0; i < config.worker.connections; ++i) lanes.push_back(std::make_unique<PostgresTarget>(config, metrics));
        return std::make_unique<LanedTarget>(std::move(lanes));
      }) {}
Worker::Worker(const common::Config& config, common::Telemetry& telemetry, const TargetFactory& make_target)
    : impl_(std::make_unique<Impl>(config, telemetry, make_target)) {}
Worker::~Worker() = default;
void Worker::run(const std::atomic<bool>& stop) { impl_->run(stop); }

}  // namespace leadsync::workers
