// R13 — no data loss across worker crashes: a leadsync-worker PROCESS killed with SIGKILL in the
// middle of a 100,000-row sync, or stopped with SIGTERM, and then restarted, leaves PostgreSQL
// exactly equal to the source: every row, every field, every key at the run's version, nothing
// deleted and nothing dead-lettered.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <future>

#include "ctl/verify.h"
#include "tests/chaos/chaos_support.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kRows = 100'000;
constexpr uint64_t kSheetSeed = 13;
// Small batches make the apply take long enough to stop the worker in the middle of it.
constexpr int kMaxBatch = 500;
constexpr auto kCompletionTimeout = 120s;

class WorkerCrash : public ::testing::Test {
 protected:
  WorkerCrash() : config_(make_config(dir_)), env_(config_), conn_(connect(config_)) {
    write_lead_sheet_file(source().url, kSheetSeed, kRows);
    write_text_file(config_path(), config_yaml(config_));
  }

  // The worker process must see this test's configuration, not the example's.
  void SetUp() override {
    const auto reread = common::load_config(config_path());
    ASSERT_EQ(reread.kafka.topic, config_.kafka.topic);
    ASSERT_EQ(reread.kafka.group, config_.kafka.group);
    ASSERT_EQ(reread.postgres.schema, config_.postgres.schema);
    ASSERT_EQ(reread.worker.max_batch, kMaxBatch);
    ASSERT_EQ(reread.entities.at("lead").fields.size(), config_.entities.at("lead").fields.size());
  }

  static common::Config make_config(const TempDir& dir) {
    auto config = isolated_example_config(unique_tag("r13_crash"));
    config.sources.at(0).url = dir.file("leads.csv");
    config.worker.max_batch = kMaxBatch;
    return config;
  }

  const common::SourceConfig& source() const { return config_.sources.at(0); }
  std::string config_path() const { return dir_.file("leadsync.yaml"); }

  // A leadsync-worker process on this test's configuration; its log goes to worker-N.log.
  std::unique_ptr<ChildProcess> start_worker() {
    const auto log = dir_.file("worker-" + std::to_string(++workers_started_) + ".log");
    return start_worker_process(config_path(), log);
  }

  // Runs the producer in the background: the sync is under way while the worker is stopped.
  std::future<producers::RunReport> start_sync() {
    return start_sync_run(config_, source());
  }

  template <typename... Params>
  int64_t query_int(const std::string& sql, const Params&... params) {
    pqxx::work tx(*conn_);
    return tx.exec_params1(sql, params...)[0].template as<int64_t>();
  }
  std::string table() const { return common::qualified(*conn_, config_.postgres.schema, "leads"); }
  int64_t table_rows() { return query_int("SELECT count(*) FROM " + table()); }

  // Waits until the worker has applied some but not all of the sync; false if that moment passed
  // unseen (or never came) within the timeout.
  ::testing::AssertionResult wait_until_mid_sync(ChildProcess& worker) {
    int64_t rows = 0;
    const bool reached = eventually(
        [&] {
          rows = table_rows();
          return rows > kRows / 10 || !worker.running();
        },
        kCompletionTimeout);
    if (!reached || !worker.running()) {
      return ::testing::AssertionFailure() << "the worker did not reach 10% of the sync (" << rows << " rows; it "
                                           << worker.describe() << ")\n" << worker.log_tail();
    }
    if (rows >= kRows * 9 / 10) {
      return ::testing::AssertionFailure() << "the worker was already at " << rows << " rows when first seen past 10%";
    }
    return ::testing::AssertionSuccess() << rows << " rows applied";
  }

  bool drift_free() { return !ctl::verify_source(config_, source()).drift(); }

  // Waits, bounded, until PostgreSQL matches the source; then checks it exactly.
  void expect_exact_replica(const producers::RunReport& run, ChildProcess& worker) {
    const bool complete = eventually([&] { return table_rows() >= kRows && drift_free(); }, kCompletionTimeout);
    const auto report = ctl::verify_source(config_, source());
    ASSERT_TRUE(complete) << ctl::format_report(report) << "worker " << worker.describe() << ":\n"
                          << worker.log_tail();
    EXPECT_FALSE(report.drift()) << ctl::format_report(report);
    EXPECT_EQ(report.source_records, kRows);
    EXPECT_EQ(report.matching, kRows);
    EXPECT_EQ(table_rows(), kRows);
    EXPECT_EQ(query_int("SELECT count(*) FROM " + table() + " WHERE _deleted"), 0);
    // Every key at the version the run published it with (source_state holds it per key).
    pqxx::work tx(*conn_);
    const auto versions = tx.exec_params(
        "SELECT version, count(*) FROM leadsync.source_state WHERE source = $1 AND run_id = $2 GROUP BY version",
        source().name, run.run_id);
    tx.commit();
    ASSERT_EQ(versions.size(), 1u) << "one version per run";
    EXPECT_EQ(versions[0][1].as<int64_t>(), kRows);
    const auto version = versions[0][0].as<int64_t>();
    EXPECT_EQ(query_int("SELECT count(*) FROM " + table() + " WHERE _version = $1", version), kRows);
    // Nothing was given up on.
    const auto dlq = high_watermarks(config_.kafka, config_.kafka.dlq_topic);
    EXPECT_EQ(sum(dlq), 0) << "records were dead-lettered";
  }

  // Stops the last worker gracefully so that nothing is left running, whatever the test found.
  static void stop(ChildProcess& worker) { stop_worker(worker, 15s); }

  // Declaration order is construction order; the environment is dropped after the connection.
  TempDir dir_;
  const common::Config config_;
  IsolatedEnvironment env_;
  std::unique_ptr<pqxx::connection> conn_;
  int workers_started_ = 0;
};

TEST_F(WorkerCrash, R13_AWorkerKilledWithSigkillMidSyncAndRestartedLeavesPostgresExactlyEqualToTheSource) {
  auto first = start_worker();
  auto sync = start_sync();
  ASSERT_TRUE(wait_until_mid_sync(*first));

  first->signal(SIGKILL);
  const auto status = first->wait_exit(10s);
  ASSERT_TRUE(status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL) << first->describe();
  const auto rows_at_crash = table_rows();
  EXPECT_LT(rows_at_crash, kRows) << "the crash should leave the sync unfinished";
  std::printf("[          ] SIGKILL with %lld of %lld rows applied\n", static_cast<long long>(rows_at_crash),
              static_cast<long long>(kRows));

  ASSERT_EQ(sync.wait_for(kCompletionTimeout), std::future_status::ready) << "the producer run did not finish";
  const auto run = sync.get();
  ASSERT_EQ(run.status, "completed") << run.message;
  ASSERT_EQ(run.events_published, static_cast<uint64_t>(kRows));

  auto second = start_worker();
  ASSERT_NO_FATAL_FAILURE(expect_exact_replica(run, *second));
  // What the crash cost: batches applied but not yet committed to Kafka were replayed, and the
  // version guard turned them into no-ops.
  const auto replayed =
      query_int("SELECT coalesce(sum(stale), 0) FROM leadsync.run_apply_stats WHERE run_id = $1", run.run_id);
  std::printf("[          ] events replayed after the crash (stale): %lld\n", static_cast<long long>(replayed));
  stop(*second);
}

TEST_F(WorkerCrash, R13_AWorkerStoppedWithSigtermMidSyncExitsCleanlyAndARestartCompletesTheSyncExactly) {
  auto first = start_worker();
  auto sync = start_sync();
  ASSERT_TRUE(wait_until_mid_sync(*first));

  const auto signalled = std::chrono::steady_clock::now();
  first->signal(SIGTERM);
  const auto status = first->wait_exit(10s);
  const auto drain = std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  ASSERT_TRUE(status.has_value()) << "the worker did not exit within 10 s of SIGTERM:\n" << first->log_tail();
  ASSERT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << first->describe() << "\n" << first->log_tail();
  const auto rows_at_stop = table_rows();
  EXPECT_LT(rows_at_stop, kRows) << "the stop should leave the sync unfinished";
  std::printf("[          ] SIGTERM drained in %.2f s with %lld of %lld rows applied\n", drain,
              static_cast<long long>(rows_at_stop), static_cast<long long>(kRows));

  ASSERT_EQ(sync.wait_for(kCompletionTimeout), std::future_status::ready) << "the producer run did not finish";
  const auto run = sync.get();
  ASSERT_EQ(run.status, "completed") << run.message;
  ASSERT_EQ(run.events_published, static_cast<uint64_t>(kRows));

  auto second = start_worker();
  ASSERT_NO_FATAL_FAILURE(expect_exact_replica(run, *second));
  // A graceful stop commits what it applied: the restart replays nothing, so every event was
  // applied exactly once (a replay would be counted as stale).
  pqxx::work tx(*conn_);
  const auto counts = tx.exec_params1(
      "SELECT coalesce(sum(inserted), 0), coalesce(sum(stale), 0) FROM leadsync.run_apply_stats WHERE run_id = $1",
      run.run_id);
  tx.commit();
  EXPECT_EQ(counts[0].as<int64_t>(), kRows);
  EXPECT_EQ(counts[1].as<int64_t>(), 0) << "events replayed after a graceful stop";
  stop(*second);
}

}  // namespace
}  // namespace leadsync::testing
