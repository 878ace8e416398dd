// Issue 12 (R14): the worker's consume loop completes a batch once nothing more arrives, instead of
// waiting out worker.max_wait_ms after its first record, so a stream's events are applied when they
// come. Through the real ConsumeLoop against the local broker.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>

#include "tests/integration/cluster.h"
#include "workers/consume_loop.h"
#include "workers/metrics.h"
#include "workers/retry.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

common::ChangeEvent event(const common::Config& config, int i) {
  return change_event(config.sources.at(0).name, "lead", "k" + std::to_string(i), leadsync::v1::OP_UPSERT, 1000 + i,
                      {{"first_name", text("Ada")}, {"email", text("k" + std::to_string(i) + "@example.com")}},
                      "run-consume-loop");
}

class ConsumeLoopTest : public ::testing::Test {
 protected:
  // A long max_wait_ms: a loop that waited it out after a batch's first record would take 5 s.
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("cloop"), 1);
    config_.worker.max_wait_ms = 5'000;
    env_ = std::make_unique<IsolatedEnvironment>(config_);
    tiers_ = std::make_unique<workers::RetryTiers>(config_.kafka);
    metrics_ = std::make_unique<workers::WorkerMetrics>(registry_);
    loop_ = std::make_unique<workers::ConsumeLoop>(config_, *tiers_, *metrics_);
    const auto expected = static_cast<size_t>(1 + config_.kafka.retry.attempts);  // 1 partition per topic
    ASSERT_TRUE(eventually(
        [&] {
          loop_->poll(stop_);
          return loop_->assignment_size() == expected;
        },
        60s))
        << "assigned " << loop_->assignment_size();
    ASSERT_TRUE(loop_->batch().empty());
  }
  void TearDown() override {
    if (loop_) loop_->close();
    loop_.reset();
  }
  void publish(int from, int count) {
    common::KafkaProducer kafka(config_.kafka);
    for (int i = from; i < from + count; ++i) produce_event(kafka, config_.kafka, event(config_, i));
    ASSERT_TRUE(kafka.flush(30s));
    ASSERT_EQ(kafka.failed(), 0u) << kafka.first_error();
  }
  // Polls until the batch has records; the duration of the poll that returned them.
  std::chrono::milliseconds poll_until_records() {
    const auto give_up = Clock::now() + 30s;
    while (Clock::now() < give_up) {
      const auto started = Clock::now();
      loop_->poll(stop_);
      if (!loop_->batch().empty()) {
        return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started);
      }
    }
    ADD_FAILURE() << "no records within 30 s";
    return 0ms;
  }

  common::Config config_;
  std::unique_ptr<IsolatedEnvironment> env_;
  prometheus::Registry registry_;
  std::unique_ptr<workers::RetryTiers> tiers_;
  std::unique_ptr<workers::WorkerMetrics> metrics_;
  std::unique_ptr<workers::ConsumeLoop> loop_;
  std::atomic<bool> stop_{false};
};

TEST_F(ConsumeLoopTest, R14_ABatchIsCompleteWhenNothingMoreArrivesNotAfterMaxWait) {
  publish(0, 3);
  const auto took = poll_until_records();
  EXPECT_EQ(loop_->batch().size(), 3u);
  // Waiting out max_wait_ms (5 s) after the first record would take >= 5 s; nothing arriving
  // ends the batch after the loop's quiet gap. 1 s leaves room for a loaded machine.
  EXPECT_LT(took, 1000ms) << "the poll that returned the batch took " << took.count() << " ms";
  loop_->finish_batch();
  EXPECT_TRUE(loop_->batch().empty());
}

}  // namespace
}  // namespace leadsync::testing
