// Issue 10 item 4 (R4): waiting on the workers' results for a run, joined by run id. `leadsyncctl
// wait SOURCE` waits for every recent run of the source whose events are not all applied, not only
// the latest; `leadsync-producer --once --wait` returns when its run's events are applied or
// dead-lettered, not when publishing is done. Real binaries, broker, PostgreSQL and worker.
#include <gtest/gtest.h>

#include "common/runs.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

std::string sheet(int rows, const std::string& note) {
  std::string s =
      "Lead ID,First name,Last name,Email,Phone,Company,Status,Assignee,Lead sources,Score,Created at,Updated at,Notes\n";
  char line[256];
  for (int i = 1; i <= rows; ++i) {
    std::snprintf(line, sizeof line, "L-%07d,Ann,Lee,ann%d@example.com,,,new,,web,%d,2026-01-02 03:04:05,,%s\n", i, i,
                  i % 1000, note.c_str());
    s += line;
  }
  return s;
}

class AppliedWait : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("wait"));
    config_.sources.at(0).url = dir_.file("leads.csv");
    env_ = std::make_unique<IsolatedEnvironment>(config_);
    write_text_file(dir_.file("leadsync.yaml"), config_yaml(config_));
    conn_ = connect(config_);
    store_ = std::make_unique<common::RunStore>(*conn_, 1s);
    ASSERT_TRUE(eventually(
        [&] {
          try {
            high_watermarks(config_.kafka, config_.kafka.topic, 2s);
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        30s));
  }
  const std::string& source() const { return config_.sources.at(0).name; }
  CommandResult run(const std::string& binary, const std::vector<std::string>& args) {
    std::vector<std::string> argv{std::string(LEADSYNC_BINARY_DIR) + binary, "--config", dir_.file("leadsync.yaml")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_.file("cmd-" + std::to_string(++calls_) + ".log"), 180s);
  }
  CommandResult producer(const std::vector<std::string>& args) { return run("/producers/leadsync-producer", args); }
  CommandResult ctl(const std::vector<std::string>& args) { return run("/ctl/leadsyncctl", args); }

  TempDir dir_;
  common::Config config_;
  std::unique_ptr<IsolatedEnvironment> env_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<common::RunStore> store_;
  int calls_ = 0;
};

TEST_F(AppliedWait, R4_WaitWaitsForAnEarlierRunWhoseEventsAreStillBeingApplied) {
  write_text_file(config_.sources.at(0).url, sheet(20'000, ""));
  ASSERT_EQ(producer({"--once"}).exit_code, 0);
  const auto first = store_->list(source(), 1).at(0);
  ASSERT_EQ(first.counters.events_published, 20'000);
  // A second run finds nothing new: the latest run is done and owes nothing. (A row in the target,
  // so that the empty table does not read as a truncated one, which would publish everything again.)
  {
    const auto& e = config_.entity(config_.sources.at(0).entity);
    pqxx::work tx(*conn_);
    tx.exec("INSERT INTO " + conn_->quote_name(config_.postgres.schema) + "." + conn_->quote_name(e.table) + " (" +
            conn_->quote_name(e.key) + ", _version) VALUES ('placeholder', 1)");
    tx.commit();
  }
  ASSERT_EQ(producer({"--once"}).exit_code, 0);
  ASSERT_EQ(store_->list(source(), 1).at(0).counters.events_published, 0);

  // No worker yet: the first run's events are all still waiting.
  const auto early = ctl({"wait", source(), "--timeout", "3"});
  EXPECT_EQ(early.exit_code, 1) << early.output;
  EXPECT_NE(early.output.find(first.run_id), std::string::npos) << early.output;

  WorkerThread worker(config_);
  const auto waited = ctl({"wait", source(), "--timeout", "120"});
  EXPECT_EQ(waited.exit_code, 0) << waited.output;
  EXPECT_GE(store_->get(first.run_id)->applied.total(), 20'000) << "wait returned before the first run was applied";
}

TEST_F(AppliedWait, R4_OnceWaitReturnsWhenTheWorkersAppliedTheRun) {
  write_text_file(config_.sources.at(0).url, sheet(20'000, ""));
  // Without a worker the run is published but never applied: --wait gives up and says so.
  const auto unapplied = producer({"--once", "--wait", "--wait-timeout", "3"});
  EXPECT_EQ(unapplied.exit_code, 1) << unapplied.output;
  EXPECT_NE(unapplied.output.find("0 of 20000 events applied"), std::string::npos) << unapplied.output;

  WorkerThread worker(config_);
  write_text_file(config_.sources.at(0).url, sheet(20'000, "edited"));
  const auto applied = producer({"--once", "--wait", "--wait-timeout", "120"});
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  const auto run = store_->list(source(), 1).at(0);
  EXPECT_EQ(run.counters.events_published, 20'000);
  EXPECT_GE(run.applied.total(), 20'000) << "--once --wait returned before its run was applied";
}

}  // namespace
}  // namespace leadsync::testing
