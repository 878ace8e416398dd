// Issue 10 "Done when" (R3, R4) with the real `leadsync-producer` binary: two producers started
// together on one source run it once; a producer killed with kill -9 mid-run on a 500,000-row
// sheet leaves its run to be failed by its stale heartbeat, and the next run resumes from the
// checkpoint, reading measurably fewer rows, with the same final database (verify) as an
// uninterrupted run and a state that the run after finds nothing to do in.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/runs.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunStatus;

std::string sheet(int rows) { return lead_sheet(rows); }

class ProducerCrash : public ExecutablesTest {
 protected:
  void SetUp() override { start("pcrash"); }

  std::unique_ptr<ChildProcess> producer(const std::string& log) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{LEADSYNC_BINARY_DIR "/producers/leadsync-producer", "--config",
                                 dir_.file("leadsync.yaml"), "--once"},
        dir_.file(log));
  }
  CommandResult ctl(const std::vector<std::string>& args, std::chrono::milliseconds timeout = 60s) {
    return run("/ctl/leadsyncctl", args, timeout);
  }
  // The JSON report line a `--once` producer printed for the run.
  static nlohmann::json report_of(const std::string& output) {
    for (std::size_t at = 0; at < output.size();) {
      const auto end = output.find('\n', at);
      const auto line = output.substr(at, end == std::string::npos ? std::string::npos : end - at);
      if (line.starts_with("{\"")) return nlohmann::json::parse(line);
      if (end == std::string::npos) break;
      at = end + 1;
    }
    return {};
  }
};

TEST_F(ProducerCrash, R3_TwoProducersStartedTogetherOnOneSourceRunItOnce) {
  write_text_file(config_.sources.at(0).url, sheet(100'000));
  auto a = producer("a.log"), b = producer("b.log");
  const auto ea = a->wait_exit(120s), eb = b->wait_exit(120s);
  ASSERT_TRUE(ea && eb);
  const int codes[] = {WIFEXITED(*ea) ? WEXITSTATUS(*ea) : -1, WIFEXITED(*eb) ? WEXITSTATUS(*eb) : -1};
  EXPECT_EQ(std::min(codes[0], codes[1]), 0) << a->log_tail() << b->log_tail();
  EXPECT_EQ(std::max(codes[0], codes[1]), 1) << a->log_tail() << b->log_tail();
  const auto& refused = codes[0] == 1 ? *a : *b;
  EXPECT_NE(refused.log_tail().find("is already running"), std::string::npos) << refused.log_tail();
  const auto runs = store_->list(source(), 10);
  ASSERT_EQ(runs.size(), 1u) << "exactly one run executed";
  // Publishing finished; with no worker here the run waits, `running`, for its events to be applied.
  EXPECT_EQ(runs[0].status, RunStatus::kRunning) << runs[0].error;
  EXPECT_FALSE(runs[0].published_at.empty());
  EXPECT_EQ(runs[0].counters.rows_read, 100'000);
}

TEST_F(ProducerCrash, R4_AProducerKilledMidRunIsFailedByHeartbeatAndTheNextRunResumesFromItsCheckpoint) {
  constexpr int kRows = 500'000;
  write_text_file(config_.sources.at(0).url, sheet(kRows));
  // A checkpoint every second (the default is 10 s): the kill must come after one and well before
  // the end, also on a fast machine.
  config_.runs.checkpoint_interval = std::chrono::seconds(1);
  write_text_file(dir_.file("leadsync.yaml"), config_yaml(config_));
  WorkerThread worker(config_);
  auto doomed = producer("doomed.log");
  // Mid-run, with a checkpoint stored whose keys cover 2/5 of the sheet: kill -9. The next run reads
  // again exactly the rows whose keys are not stored (the equality below), so the stored keys are
  // what the kill waits for: the rows read run ahead of them, by 145,000 rows once on a loaded
  // machine, and waiting on those let the kill come before the keys covered a fifth.
  common::RunInfo before_kill;
  ASSERT_TRUE(eventually(
      [&] {
        const auto runs = store_->list(source(), 1);
        if (runs.empty()) return false;
        before_kill = runs[0];
        if (before_kill.checkpoint.empty()) return false;
        pqxx::work tx(*conn_);
        const auto covered =
            tx.exec_params1("SELECT count(*) FROM leadsync.run_progress_keys WHERE source = $1", source())[0]
                .as<int64_t>();
        tx.commit();
        return covered >= kRows * 2 / 5;
      },
      120s))
      << doomed->log_tail();
  ASSERT_EQ(before_kill.status, RunStatus::kRunning);
  doomed->signal(SIGKILL);
  ASSERT_TRUE(doomed->wait_exit(10s));

  // Nobody finishes the run; its heartbeat goes stale and the run store marks it failed.
  common::RunInfo crashed;
  ASSERT_TRUE(eventually(
      [&] {
        crashed = *store_->get(before_kill.run_id);
        return crashed.status == RunStatus::kFailed;
      },
      30s));
  EXPECT_NE(crashed.error.find("heartbeat stale"), std::string::npos) << crashed.error;
  pqxx::work tx(*conn_);
  const auto at_checkpoint =
      tx.exec_params1("SELECT count(*) FROM leadsync.run_progress_keys WHERE source = $1", source())[0].as<int64_t>();
  tx.commit();

  // The next run resumes from the checkpoint.
  auto next = producer("next.log");
  const auto exit = next->wait_exit(180s);
  ASSERT_TRUE(exit && WIFEXITED(*exit) && WEXITSTATUS(*exit) == 0) << next->log_tail();
  const auto report = report_of(next->log_tail(1 << 20));
  ASSERT_TRUE(report.is_object()) << next->log_tail();
  EXPECT_EQ(report["status"], "completed") << report.dump();
  EXPECT_EQ(report.value("resumed_from", ""), crashed.run_id) << report.dump();
  const auto resumed_rows = report["rows_read"].get<int64_t>();
  std::printf("rows read: killed run %lld (heartbeat), %lld up to its checkpoint; resumed run %lld; a full run reads "
              "%d\n",
              static_cast<long long>(crashed.counters.rows_read), static_cast<long long>(at_checkpoint),
              static_cast<long long>(resumed_rows), kRows);
  EXPECT_EQ(at_checkpoint + resumed_rows, kRows) << "rows between the checkpoint and the kill are read again, no others";
  EXPECT_LE(resumed_rows, kRows * 4 / 5) << "not measurably fewer rows than a full run";

  // The same final database as an uninterrupted run: every record of the sheet, field by field.
  const auto waited = ctl({"wait", source(), "--timeout", "300"}, 320s);
  EXPECT_EQ(waited.exit_code, 0) << waited.output;
  const auto verified = ctl({"verify", source()}, 300s);
  EXPECT_EQ(verified.exit_code, 0) << verified.output;
  EXPECT_NE(verified.output.find("PostgreSQL matches the source"), std::string::npos) << verified.output;
  EXPECT_NE(verified.output.find(std::to_string(kRows) + " matching"), std::string::npos) << verified.output;
  // And the state is the whole sheet's: the next run has nothing to publish.
  auto last = producer("last.log");
  ASSERT_TRUE(last->wait_exit(120s));
  const auto again = report_of(last->log_tail(1 << 20));
  EXPECT_EQ(again["events_published"], 0) << again.dump();
}

}  // namespace
}  // namespace leadsync::testing
