// R3, R4 — the run store against the real PostgreSQL: one runner per source enforced by the
// database (advisory lock + partial unique index), stale heartbeats free the source, cancel / pause /
// resume as control rows, queued triggers, checkpoints and progress. Each runner has its own
// session, as separate producer processes would.
#include <gtest/gtest.h>

#include <atomic>
#include <barrier>
#include <thread>

#include "common/runs.h"
#include "common/schema.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunConflict;
using common::RunControl;
using common::RunStatus;
using common::RunStore;
using common::RunTrigger;
using common::WhenRunning;

class RunsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("runs"));
    auto conn = connect(config_);
    common::migrate(*conn, config_);
    source_ = "runs-" + unique_tag("src");
  }

  std::unique_ptr<pqxx::connection> session() { return connect(config_); }

  RunStatus status_of(const std::string& run_id) {
    auto conn = session();
    RunStore store(*conn, 1s);
    const auto info = store.get(run_id);
    EXPECT_TRUE(info) << run_id;
    return info ? info->status : RunStatus::kQueued;
  }

  int64_t running_rows() {
    auto conn = session();
    pqxx::work tx(*conn);
    return tx
        .exec_params1("SELECT count(*) FROM leadsync.sync_runs WHERE source = $1 AND status = 'running'", source_)[0]
        .as<int64_t>();
  }

  common::Config config_;
  std::string source_;
};

TEST_F(RunsTest, R3_TwoRunnersStartedTogetherOnOneSourceExactlyOneRuns) {
  auto a = session(), b = session();
  RunStore store_a(*a, 1s), store_b(*b, 1s);
  std::barrier start(2);
  std::atomic<int> claimed{0}, refused{0};
  std::string refusal;
  std::mutex m;
  auto runner = [&](RunStore& store) {
    start.arrive_and_wait();
    try {
      store.claim(source_, RunTrigger::kSchedule);
      ++claimed;
    } catch (const RunConflict& e) {
      ++refused;
      std::lock_guard lock(m);
      refusal = e.what();
    }
  };
  std::thread ta(runner, std::ref(store_a)), tb(runner, std::ref(store_b));
  ta.join();
  tb.join();
  EXPECT_EQ(claimed.load(), 1);
  EXPECT_EQ(refused.load(), 1);
  EXPECT_NE(refusal.find("is already running"), std::string::npos) << refusal;
  EXPECT_EQ(running_rows(), 1);
}

TEST_F(RunsTest, R3_TheSecondRunnerMayStartOnceTheFirstFinished) {
  auto a = session(), b = session();
  RunStore store_a(*a, 1s), store_b(*b, 1s);
  const auto first = store_a.claim(source_, RunTrigger::kSchedule);
  EXPECT_THROW(store_b.claim(source_, RunTrigger::kSchedule), RunConflict);
  EXPECT_TRUE(store_a.finish(first, RunStatus::kCompleted, {}, "", ""));
  const auto second = store_b.claim(source_, RunTrigger::kSchedule);
  EXPECT_NE(second.run_id, first.run_id);
  EXPECT_EQ(status_of(first.run_id), RunStatus::kCompleted);
  EXPECT_EQ(status_of(second.run_id), RunStatus::kRunning);
}

TEST_F(RunsTest, R3_ARunnerWhoseSessionEndsFreesTheSourceAndItsRunIsFailed) {
  auto a = session();
  RunStore store_a(*a, 10s);
  const auto crashed = store_a.claim(source_, RunTrigger::kSchedule);
  // A crash: the runner's session is gone without finish(); the heartbeat is still fresh.
  auto b = session();
  {
    pqxx::nontransaction n(*b);
    n.exec_params("SELECT pg_terminate_backend($1)", a->backendpid());
  }
  std::this_thread::sleep_for(200ms);
  RunStore store_b(*b, 10s);
  const auto next = store_b.claim(source_, RunTrigger::kSchedule);
  EXPECT_NE(next.run_id, crashed.run_id);
  const auto info = store_b.get(crashed.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::kFailed);
  EXPECT_NE(info->error.find("session ended"), std::string::npos) << info->error;
  EXPECT_EQ(running_rows(), 1);
}

TEST_F(RunsTest, R3_AStaleHeartbeatMarksTheRunFailedAndFreesTheSource) {
  auto hung = session(), b = session();
  RunStore store_hung(*hung, 200ms), store_b(*b, 200ms);
  const auto stuck = store_hung.claim(source_, RunTrigger::kSchedule);
  // Fresh heartbeat: the source is held.
  EXPECT_THROW(store_b.claim(source_, RunTrigger::kSchedule), RunConflict);
  // The runner hangs with its session open: no heartbeat for more than 3 intervals.
  std::this_thread::sleep_for(800ms);
  const auto next = store_b.claim(source_, RunTrigger::kSchedule);
  const auto info = store_b.get(stuck.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::kFailed);
  EXPECT_NE(info->error.find("heartbeat stale"), std::string::npos) << info->error;
  EXPECT_EQ(status_of(next.run_id), RunStatus::kRunning);
  // The hung runner, should it wake, learns that the run is no longer its own.
  RunControl woke = RunControl::kContinue;
  try {
    woke = store_hung.heartbeat(stuck, {}, {});
  } catch (const std::exception&) {
    woke = RunControl::kLost;  // its session was ended
  }
  EXPECT_EQ(woke, RunControl::kLost);
}

TEST_F(RunsTest, R3_ListingRunsMarksAStaleRunFailedWithoutAnyClaim) {
  auto hung = session(), op = session();
  RunStore store_hung(*hung, 200ms), ops(*op, 1s);
  const auto stuck = store_hung.claim(source_, RunTrigger::kSchedule);
  EXPECT_EQ(ops.list(source_, 10).at(0).status, RunStatus::kRunning);
  std::this_thread::sleep_for(800ms);
  const auto runs = ops.list(source_, 10);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_EQ(runs[0].run_id, stuck.run_id);
  EXPECT_EQ(runs[0].status, RunStatus::kFailed);
}

TEST_F(RunsTest, R4_CancelReachesTheRunnerAtItsNextBatchAndTheRunEndsCancelled) {
  auto a = session(), op = session();
  RunStore runner(*a, 1s), ops(*op, 1s);
  const auto run = runner.claim(source_, RunTrigger::kSchedule);
  EXPECT_EQ(runner.control(run), RunControl::kContinue);
  const auto result = ops.cancel(source_);
  EXPECT_EQ(result.running, run.run_id);
  EXPECT_EQ(runner.heartbeat(run, {10, 100, std::nullopt, "reading"}, {}), RunControl::kCancel);
  EXPECT_TRUE(runner.finish(run, RunStatus::kCancelled, {}, "cancelled by an operator", ""));
  EXPECT_EQ(status_of(run.run_id), RunStatus::kCancelled);
  EXPECT_THROW(ops.cancel(source_), RunConflict);  // nothing left to cancel
}

TEST_F(RunsTest, R4_CancelOfAQueuedRunCancelsItBeforeItStarts) {
  auto op = session();
  RunStore ops(*op, 1s);
  const auto t = ops.trigger(source_, RunTrigger::kManual, WhenRunning::kRefuse);
  EXPECT_EQ(status_of(t.run_id), RunStatus::kQueued);
  const auto result = ops.cancel(source_);
  ASSERT_EQ(result.cancelled_queued.size(), 1u);
  EXPECT_EQ(result.cancelled_queued[0], t.run_id);
  EXPECT_EQ(status_of(t.run_id), RunStatus::kCancelled);
}

TEST_F(RunsTest, R3_TriggerWhileRunningIsRefusedOrQueuedOnceBesideTheRunningRun) {
  auto a = session(), op = session(), b = session();
  RunStore runner(*a, 1s), ops(*op, 1s), later(*b, 1s);
  const auto run = runner.claim(source_, RunTrigger::kSchedule);
  try {
    ops.trigger(source_, RunTrigger::kManual, WhenRunning::kRefuse);
    ADD_FAILURE() << "a trigger while running was accepted";
  } catch (const RunConflict& e) {
    EXPECT_NE(std::string(e.what()).find(run.run_id), std::string::npos) << e.what();
  }
  const auto queued = ops.trigger(source_, RunTrigger::kManual, WhenRunning::kQueue);
  EXPECT_TRUE(queued.behind_running);
  EXPECT_THROW(ops.trigger(source_, RunTrigger::kManual, WhenRunning::kQueue), RunConflict);
  EXPECT_EQ(runner.queued_sources({source_}), std::vector<std::string>{source_});
  runner.finish(run, RunStatus::kCompleted, {}, "", "");
  const auto next = later.claim(source_, RunTrigger::kSchedule);
  EXPECT_EQ(next.run_id, queued.run_id);
  EXPECT_EQ(next.trigger, RunTrigger::kManual);
  EXPECT_TRUE(runner.queued_sources({source_}).empty());
}

TEST_F(RunsTest, R4_TriggerSaysWhetherAProducerServiceWillStartIt) {
  auto op = session();
  RunStore ops(*op, 1s);
  EXPECT_FALSE(ops.trigger(source_, RunTrigger::kManual, WhenRunning::kRefuse).producer_alive);
  ops.cancel(source_);
  const auto instance = "test-" + source_;
  ops.announce(instance, {"other", source_});
  EXPECT_TRUE(ops.trigger(source_, RunTrigger::kManual, WhenRunning::kRefuse).producer_alive);
  ops.withdraw(instance);
}

TEST_F(RunsTest, R4_PauseStopsTheRunKeepsItsCheckpointAndTheRunAfterResumeContinuesFromIt) {
  auto a = session(), op = session();
  RunStore runner(*a, 1s), ops(*op, 1s);
  const auto run = runner.claim(source_, RunTrigger::kSchedule);
  runner.save_checkpoint(run, R"({"row":1200})");
  const auto paused = ops.pause(source_);
  EXPECT_EQ(paused.running, run.run_id);
  EXPECT_TRUE(runner.paused(source_));
  EXPECT_EQ(runner.control(run), RunControl::kPause);
  runner.finish(run, RunStatus::kCancelled, {}, "paused", "");
  // Paused: no trigger, and the schedule does not run it (the producer asks paused()).
  try {
    ops.trigger(source_, RunTrigger::kManual, WhenRunning::kRefuse);
    ADD_FAILURE() << "a trigger while paused was accepted";
  } catch (const RunConflict& e) {
    EXPECT_NE(std::string(e.what()).find("paused"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(ops.resume(source_));
  EXPECT_FALSE(ops.resume(source_));
  EXPECT_FALSE(runner.paused(source_));
  const auto next = runner.claim(source_, RunTrigger::kSchedule);
  EXPECT_EQ(next.resumed_from, run.run_id);
  EXPECT_EQ(next.checkpoint, R"({"row":1200})");
}

TEST_F(RunsTest, R4_AFullRunAndARunAfterACompletedOneStartFromTheBeginning) {
  auto a = session();
  RunStore runner(*a, 1s);
  auto run = runner.claim(source_, RunTrigger::kSchedule);
  runner.save_checkpoint(run, "cp-1");
  runner.finish(run, RunStatus::kFailed, {}, "", "crashed");
  run = runner.claim(source_, RunTrigger::kFull);
  EXPECT_TRUE(run.checkpoint.empty());
  runner.finish(run, RunStatus::kCompleted, {}, "", "");
  run = runner.claim(source_, RunTrigger::kSchedule);
  EXPECT_TRUE(run.checkpoint.empty()) << "a checkpoint from before the last completed run was reused";
}

TEST_F(RunsTest, R4_ProgressAndCountersArePersistedAsTheRunGoes) {
  auto a = session(), op = session();
  RunStore runner(*a, 1s), ops(*op, 1s);
  const auto run = runner.claim(source_, RunTrigger::kManual);
  common::RunCounters c;
  c.rows_read = 50;
  c.new_records = 30;
  c.changed_records = 5;
  c.events_published = 35;
  EXPECT_EQ(runner.heartbeat(run, {50, 200, std::nullopt, "page 2 of 8"}, c), RunControl::kContinue);
  const auto info = ops.get(run.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->trigger, RunTrigger::kManual);
  EXPECT_EQ(info->progress.rows_done, 50);
  EXPECT_EQ(info->progress.rows_total, 200);
  ASSERT_TRUE(info->progress.percent);
  EXPECT_DOUBLE_EQ(*info->progress.percent, 25.0);
  EXPECT_EQ(info->progress.message, "page 2 of 8");
  EXPECT_EQ(info->counters.new_records, 30);
  EXPECT_EQ(info->counters.events_published, 35);
  EXPECT_FALSE(info->started_at.empty());
}

TEST_F(RunsTest, R3_TheDatabaseAcceptsOnlyTheFiveStatusWordsAndOneRunningRowPerSource) {
  auto conn = session();
  {
    pqxx::work tx(*conn);
    EXPECT_THROW(tx.exec_params("INSERT INTO leadsync.sync_runs (run_id, source, status) VALUES ($1, $2, 'paused')",
                                "x-" + source_, source_),
                 pqxx::check_violation);
  }
  pqxx::work tx(*conn);
  tx.exec_params("INSERT INTO leadsync.sync_runs (run_id, source, status) VALUES ($1, $2, 'running')", "a-" + source_,
                 source_);
  EXPECT_THROW(tx.exec_params("INSERT INTO leadsync.sync_runs (run_id, source, status) VALUES ($1, $2, 'running')",
                              "b-" + source_, source_),
               pqxx::unique_violation);
}

TEST(RunStatusTest, R3_EveryStatusWordRoundTripsAndNoOtherIsAccepted) {
  for (auto s : {RunStatus::kQueued, RunStatus::kRunning, RunStatus::kCompleted, RunStatus::kFailed,
                 RunStatus::kCancelled}) {
    EXPECT_EQ(common::parse_run_status(common::run_status_name(s)), s);
  }
  EXPECT_FALSE(common::parse_run_status("paused"));
  EXPECT_FALSE(common::parse_run_status("succeeded"));
  EXPECT_EQ(common::parse_run_trigger("full"), RunTrigger::kFull);
  EXPECT_FALSE(common::parse_run_trigger("webhook"));
}

}  // namespace
}  // namespace leadsync::testing
