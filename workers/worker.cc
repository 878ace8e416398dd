// Wires the worker's parts together (design.md §4): the consume loop fills a batch, the apply
// target applies it, the forwarder sends its failed records to the retry tiers or the dead-letter
// topic, and only then are the batch's offsets stored. While the target is unavailable every
// partition is paused and the same batch is tried again after a backoff.
#include "workers/worker.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <random>

#include "workers/consume_loop.h"
#include "workers/forwarder.h"
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
  Impl(const common::Config& config, common::Telemetry& telemetry)
      : config_(config),
        telemetry_(telemetry),
        metrics_(telemetry.registry()),
        tiers_(config.kafka),
        target_(std::make_unique<PostgresTarget>(config, metrics_)),
        forwarder_(config.kafka, tiers_, metrics_),
        loop_(config, tiers_, metrics_) {
    loop_.on_assigned([this] { telemetry_.set_ready(target_->available()); });
  }

  void run(const std::atomic<bool>& stop) {
    spdlog::info("worker: consuming {} and {} retry tier(s) as group {}", config_.kafka.topic,
                 config_.kafka.retry.attempts, config_.kafka.group);
    if (!target_->connect()) wait_for_target(stop);
    while (!stop.load()) {
      telemetry_.heartbeat();
      loop_.resume_due();
      loop_.sample_lag();
      loop_.poll(stop);
      if (!loop_.batch().empty()) process_batch(stop);
    }
    // The batch in hand was applied by the last iteration; push its offsets and leave the group.
    loop_.close();
    forwarder_.flush(std::chrono::seconds(10));
    telemetry_.set_ready(false);
    spdlog::info("worker: stopped cleanly");
  }

 private:
  void process_batch(const std::atomic<bool>& stop) {
    const auto started = Clock::now();
    auto& batch = loop_.batch();
    std::vector<Record*> records;
    records.reserve(batch.size());
    for (auto& r : batch) records.push_back(&r);
    RunCounts per_run;
    for (;;) {
      try {
        per_run = target_->apply(records);
        break;
      } catch (const TargetUnavailable& e) {
        spdlog::error("worker: database unavailable ({}); pausing consumption until it is back", e.what());
        wait_for_target(stop);
        if (stop.load() && !target_->available()) return;  // not applied, offsets not stored: replayed later
      }
    }
    const auto forwarded = forwarder_.forward(batch, std::chrono::minutes(3));
    if (!forwarded.all_acknowledged()) {
      // Without the acknowledgement the offsets must not move. Exiting replays the batch from the
      // last stored offsets on restart, which the version guard makes harmless.
      throw std::runtime_error("forwarding failed records to retry/dead-letter topics was not acknowledged: " +
                               forwarded.first_error);
    }
    target_->count_dead_letters(forwarded.dead_lettered);
    for (const auto& [run, c] : forwarded.dead_lettered) per_run[run].failed += c.failed;
    observe(started, per_run);
    loop_.finish_batch();
  }

  void observe(Clock::time_point started, const RunCounts& per_run) {
    metrics_.batch_seconds.Observe(std::chrono::duration<double>(Clock::now() - started).count());
    const auto now = wall_micros();
    for (const auto& r : loop_.batch()) {
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

  // Pauses every partition and keeps serving the group (rebalances, heartbeats) while it retries
  // the connection with exponential backoff and jitter. Records are not touched.
  void wait_for_target(const std::atomic<bool>& stop) {
    telemetry_.set_ready(false);
    loop_.pause_all();
    std::mt19937_64 rng(std::random_device{}());
    int64_t backoff_ms = 250;
    auto next_try = Clock::now();
    bool up = false;
    while (!stop.load()) {
      telemetry_.heartbeat();
      loop_.serve_paused(100);
      if (Clock::now() < next_try) continue;
      if ((up = target_->connect())) break;
      const auto jitter = static_cast<int64_t>(rng() % static_cast<uint64_t>(backoff_ms / 2 + 1));
      next_try = Clock::now() + std::chrono::milliseconds(backoff_ms + jitter);
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 5000);
    }
    if (!up) return;
    spdlog::info("worker: database is back; resuming");
    loop_.resume_all();
    telemetry_.set_ready(loop_.assignment_size() > 0);
  }

  const common::Config& config_;
  common::Telemetry& telemetry_;
  WorkerMetrics metrics_;
  RetryTiers tiers_;
  std::unique_ptr<ApplyTarget> target_;
  // Destruction order: the consume loop goes first (it leaves the group), then the producer flushes.
  Forwarder forwarder_;
  ConsumeLoop loop_;
};

Worker::Worker(const common::Config& config, common::Telemetry& telemetry)
    : impl_(std::make_unique<Impl>(config, telemetry)) {}
Worker::~Worker() = default;
void Worker::run(const std::atomic<bool>& stop) { impl_->run(stop); }

}  // namespace leadsync::workers
