// R3, R4 — `leadsyncctl runs | trigger | pause | resume | cancel` as an operator runs them: the
// real binary against the real PostgreSQL, with a runner holding the source in this process as a
// producer would.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/runs.h"
#include "common/schema.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunControl;
using common::RunStatus;
using common::RunStore;
using common::RunTrigger;

struct Result {
  int exit_code = -1;
  std::string output;
};

class RunsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("runscli"));
    auto conn = connect(config_);
    common::migrate(*conn, config_);
    source_ = config_.sources.at(0).name;
    write_text_file(dir_.file("leadsync.yaml"), config_yaml(config_));
  }

  // Runs leadsyncctl with `args` to the end; its exit code and everything it printed.
  Result ctl(const std::vector<std::string>& args) {
    const auto log = dir_.file("ctl-" + std::to_string(++calls_) + ".log");
    std::vector<std::string> argv{LEADSYNC_BINARY_DIR "/ctl/leadsyncctl", "--config", dir_.file("leadsync.yaml")};
    argv.insert(argv.end(), args.begin(), args.end());
    ChildProcess child(argv, log);
    const auto status = child.wait_exit(60s);
    Result r;
    r.exit_code = status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1;
    std::ifstream in(log);
    std::stringstream text;
    text << in.rdbuf();
    r.output = text.str();
    return r;
  }

  common::Config config_;
  std::string source_;
  TempDir dir_;
  int calls_ = 0;
};

TEST_F(RunsCliTest, R3_TriggerWhileRunningIsRefusedWithTheRunningRunNamedOrQueuedWithQueue) {
  auto session = connect(config_);
  RunStore runner(*session, 1s);
  const auto run = runner.claim(source_, RunTrigger::kSchedule);
  const auto refused = ctl({"trigger", source_});
  EXPECT_EQ(refused.exit_code, 3) << refused.output;
  EXPECT_NE(refused.output.find("is already running: run " + run.run_id), std::string::npos) << refused.output;
  const auto queued = ctl({"trigger", source_, "--queue"});
  EXPECT_EQ(queued.exit_code, 0) << queued.output;
  EXPECT_NE(queued.output.find("behind the running run"), std::string::npos) << queued.output;
  // Nobody announced a producer service for this source: the command says so.
  EXPECT_NE(queued.output.find("no producer service is running source " + source_), std::string::npos)
      << queued.output;
  const auto again = ctl({"trigger", source_, "--queue"});
  EXPECT_EQ(again.exit_code, 3) << again.output;
  EXPECT_NE(again.output.find("already has a queued run"), std::string::npos) << again.output;
}

TEST_F(RunsCliTest, R4_CancelFromTheCliStopsTheRunningRunAtItsNextBatch) {
  auto session = connect(config_);
  RunStore runner(*session, 1s);
  const auto run = runner.claim(source_, RunTrigger::kSchedule);
  const auto r = ctl({"cancel", source_});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(run.run_id), std::string::npos) << r.output;
  EXPECT_EQ(runner.control(run), RunControl::kCancel);
  runner.finish(run, RunStatus::kCancelled, {}, "cancelled by an operator", "");
  const auto nothing = ctl({"cancel", source_});
  EXPECT_EQ(nothing.exit_code, 3) << nothing.output;
}

TEST_F(RunsCliTest, R4_PauseFromTheCliStopsTheRunAndRefusesTriggersUntilResume) {
  auto session = connect(config_);
  RunStore runner(*session, 1s);
  const auto run = runner.claim(source_, RunTrigger::kSchedule);
  EXPECT_EQ(ctl({"pause", source_}).exit_code, 0);
  EXPECT_EQ(runner.control(run), RunControl::kPause);
  EXPECT_TRUE(runner.paused(source_));
  runner.finish(run, RunStatus::kCancelled, {}, "paused", "");
  const auto refused = ctl({"trigger", source_});
  EXPECT_EQ(refused.exit_code, 3) << refused.output;
  EXPECT_NE(refused.output.find("paused"), std::string::npos) << refused.output;
  const auto resumed = ctl({"resume", source_});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_NE(resumed.output.find("resumed source"), std::string::npos) << resumed.output;
  EXPECT_FALSE(runner.paused(source_));
  EXPECT_EQ(ctl({"trigger", source_}).exit_code, 0);
}

// After publishing, the run is `running` until the workers applied every event (issue 10): `--wait`
// shows that phase too, from the workers' counts, and returns when the last event closes the run.
TEST_F(RunsCliTest, R4_TriggerWaitShowsTheWorkersApplyingAPublishedRunUntilItCompletes) {
  auto session = connect(config_);
  RunStore producer(*session, 1s);
  producer.announce("cli-test-" + source_, {source_});
  std::thread service([&] {
    ASSERT_TRUE(eventually([&] { return !producer.queued_sources({source_}).empty(); }, 30s));
    const auto run = producer.claim(source_, RunTrigger::kSchedule);
    common::RunCounters c;
    c.rows_read = c.new_records = c.events_published = 300;
    producer.finish(run, RunStatus::kCompleted, c, "", "");   // published; none applied yet
    // The workers: 100 events per step, the last step with one dead letter; the step that accounts
    // for the 300th event closes the run, as the worker's transaction does.
    auto worker = connect(config_);
    for (int step = 0; step < 3; ++step) {
      std::this_thread::sleep_for(1200ms);
      pqxx::work tx(*worker);
      tx.exec_params("INSERT INTO leadsync.run_apply_stats (run_id, inserted, failed) VALUES ($1, $2, $3)",
                     run.run_id, step == 2 ? 99 : 100, step == 2 ? 1 : 0);
      common::close_applied(tx, {run.run_id});
      tx.commit();
    }
  });
  const auto r = ctl({"trigger", source_, "--wait", "--timeout", "60"});
  service.join();
  producer.withdraw("cli-test-" + source_);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("applying: 100/300 events done"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("applying: 200/300 events done"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(": completed, 300 rows read, 300 events published"), std::string::npos) << r.output;
}

TEST_F(RunsCliTest, R4_TriggerWaitFollowsTheRunThatTheProducerStartsToItsEnd) {
  auto session = connect(config_);
  RunStore producer(*session, 1s);
  producer.announce("cli-test-" + source_, {source_});
  // The producer service: picks the queued run up, reports progress, completes it.
  std::thread service([&] {
    ASSERT_TRUE(eventually([&] { return !producer.queued_sources({source_}).empty(); }, 30s));
    const auto run = producer.claim(source_, RunTrigger::kSchedule);
    common::RunCounters c;
    for (int rows = 0; rows <= 400; rows += 100) {
      c.rows_read = rows;
      producer.heartbeat(run, {rows, 400, std::nullopt, ""}, c);
      std::this_thread::sleep_for(300ms);
    }
    producer.finish(run, RunStatus::kCompleted, c, "", "");
  });
  const auto r = ctl({"trigger", source_, "--wait", "--timeout", "60"});
  service.join();
  producer.withdraw("cli-test-" + source_);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(": completed, 400 rows read"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("rows/s"), std::string::npos) << "no progress line (not a TTY: plain lines)\n" << r.output;

  const auto listed = ctl({"runs", source_, "--json", "--limit", "5"});
  ASSERT_EQ(listed.exit_code, 0) << listed.output;
  const auto first = nlohmann::json::parse(listed.output.substr(0, listed.output.find('\n')));
  EXPECT_EQ(first["status"], "completed");
  EXPECT_EQ(first["trigger"], "manual");
  EXPECT_EQ(first["progress"]["rows_done"], 400);
}

TEST_F(RunsCliTest, R4_AnUnknownSourceIsAUsageError) {
  const auto r = ctl({"trigger", "no-such-source"});
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no source named 'no-such-source'"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace leadsync::testing
