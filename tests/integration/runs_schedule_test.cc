// R4 — the producer service's choice of what to start (common/runs_schedule.h) against the real
// PostgreSQL: a trigger is started at the next tick, a paused source's schedule does not run, and
// the service's announcement is what lets a trigger say that someone will start its run.
#include <gtest/gtest.h>

#include "common/runs_schedule.h"
#include "common/schema.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunStore;
using common::RunTrigger;
using common::ServiceSchedule;
using common::WhenRunning;
using Clock = ServiceSchedule::Clock;

class ServiceScheduleTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("sched"));
    auto conn = connect(config_);
    common::migrate(*conn, config_);
    a_ = "sched-a-" + unique_tag("s");
    b_ = "sched-b-" + unique_tag("s");
  }
  common::Config config_;
  std::string a_, b_;
};

TEST_F(ServiceScheduleTest, R4_ATriggerIsDueAtTheNextTickAndASourceRunsAgainOnlyWhenItsScheduleComesDue) {
  auto service_conn = connect(config_), op_conn = connect(config_);
  RunStore service(*service_conn, 1s), ops(*op_conn, 1s);
  ServiceSchedule schedule(service, "test-" + a_, {{a_, 1h}, {b_, 1h}});
  const auto start = Clock::now();
  EXPECT_EQ(schedule.due_now(start).size(), 2u);  // both due when the service starts
  schedule.ran(a_, start);
  schedule.ran(b_, start);
  EXPECT_TRUE(schedule.due_now(start + 1s).empty());
  const auto t = ops.trigger(b_, RunTrigger::kManual, WhenRunning::kRefuse);
  EXPECT_TRUE(t.producer_alive) << "the service's announcement was not seen";
  EXPECT_EQ(schedule.due_now(start + 1s), std::vector<std::string>{b_});
  EXPECT_EQ(schedule.due_now(start + 2h).size(), 2u);
}

TEST_F(ServiceScheduleTest, R4_APausedSourceIsNotRunByItsScheduleUntilResumed) {
  auto service_conn = connect(config_), op_conn = connect(config_);
  RunStore service(*service_conn, 1s), ops(*op_conn, 1s);
  ServiceSchedule schedule(service, "test-" + a_, {{a_, 1s}});
  ops.pause(a_);
  EXPECT_TRUE(schedule.due_now(Clock::now() + 1h).empty());
  ops.resume(a_);
  EXPECT_EQ(schedule.due_now(Clock::now() + 1h), std::vector<std::string>{a_});
}

TEST_F(ServiceScheduleTest, R4_WithoutARunningServiceATriggerSaysNobodyWillStartIt) {
  auto service_conn = connect(config_), op_conn = connect(config_);
  RunStore service(*service_conn, 1s), ops(*op_conn, 1s);
  {
    ServiceSchedule schedule(service, "test-" + a_, {{a_, 1s}});
    schedule.due_now();
  }  // the service stopped: its announcement is withdrawn
  EXPECT_FALSE(ops.trigger(a_, RunTrigger::kManual, WhenRunning::kRefuse).producer_alive);
}

}  // namespace
}  // namespace leadsync::testing
