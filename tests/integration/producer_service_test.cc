// Issue 10 items 2 and 3 (R3, R4) through the real `leadsync-producer` service, controlled as an
// operator would, once with `leadsyncctl` and once over the HTTP API: a trigger is started within
// a second (and without a service, trigger says so); a second trigger while running is refused,
// or queued; cancel ends the running run `cancelled` within one batch with nothing published after
// what it counted; pause ends it `cancelled` (paused) with its checkpoint kept, a trigger while
// paused is refused, and after resume the service continues the paused read from its checkpoint.
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>

#include "common/runs.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunStatus;

constexpr int kRows = 300'000;
// The sheet of the long runs (cancel, pause, resume): long enough that the run is still reading when
// the operator's request lands. The producer reads and publishes a few hundred thousand rows a
// second (issue 12), so at kRows a full re-read could end before its next heartbeat brought the cancel.
constexpr int kLongRows = 1'000'000;
constexpr const char* kToken = "service-test-token-51c2";

std::string big_sheet() { return lead_sheet(kRows); }

enum class Via { kCli, kApi };

class ProducerService : public ::testing::TestWithParam<Via> {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("service"));
    source().url = dir_.file("leads.csv");
    source().schedule = std::chrono::hours(1);
    port_ = free_loopback_port();
    config_.api.address = "127.0.0.1:" + std::to_string(port_);
    config_.api.token_env = "LEADSYNC_SERVICE_TEST_TOKEN";
    ::setenv("LEADSYNC_SERVICE_TEST_TOKEN", kToken, 1);
    env_ = std::make_unique<IsolatedEnvironment>(config_);
    write_text_file(source().url, big_sheet());
    write_text_file(dir_.file("leadsync.yaml"), config_yaml(config_));
    conn_ = connect(config_);
    store_ = std::make_unique<common::RunStore>(*conn_, 1s);
    ASSERT_TRUE(wait_for_topic_leaders(config_));
  }
  void TearDown() override {
    if (service_) {
      service_->signal(SIGTERM);
      service_->wait_exit(20s);
    }
  }

  common::SourceConfig& source() { return config_.sources.at(0); }

  void start_service() {
    service_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{LEADSYNC_BINARY_DIR "/producers/leadsync-producer", "--config",
                                 dir_.file("leadsync.yaml")},
        dir_.file("producer.log"));
  }

  CommandResult ctl(const std::vector<std::string>& args) {
    std::vector<std::string> argv{LEADSYNC_BINARY_DIR "/ctl/leadsyncctl", "--config", dir_.file("leadsync.yaml")};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, dir_.file("ctl-" + std::to_string(++calls_) + ".log"));
  }

  // An operator's request by the interface under test. Returns whether it was accepted; `said` is
  // what the operator was told.
  bool request(const std::string& action, bool full = false, bool queue = false, std::string* said = nullptr) {
    if (GetParam() == Via::kCli) {
      std::vector<std::string> args{action, source().name};
      if (full) args.push_back("--full");
      if (queue) args.push_back("--queue");
      const auto r = ctl(args);
      if (said) *said = r.output;
      EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 3) << r.output;  // 3: refused (a conflict)
      return r.exit_code == 0;
    }
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(10, 0);
    httplib::Headers h{{"Authorization", std::string("Bearer ") + kToken}};
    std::string path = "/api/v1/sources/" + source().name + "/" + action;
    if (full) path += "?full=true";
    if (queue) path += "?queue=true";
    const auto r = client.Post(path.c_str(), h, "", "application/json");
    EXPECT_TRUE(r) << "no answer from " << path;
    if (!r) return false;
    if (said) *said = r->body;
    EXPECT_TRUE(r->status == 200 || r->status == 202 || r->status == 409) << r->status << " " << r->body;
    return r->status < 300;
  }

  common::RunInfo latest() {
    const auto runs = store_->list(source().name, 1);
    return runs.empty() ? common::RunInfo{} : runs[0];
  }
  common::RunInfo wait_for_latest(const std::function<bool(const common::RunInfo&)>& done,
                                  std::chrono::milliseconds timeout = 120s) {
    common::RunInfo r;
    EXPECT_TRUE(eventually(
        [&] {
          r = latest();
          return done(r);
        },
        timeout))
        << "latest run " << r.run_id << " " << common::run_status_name(r.status) << "\n"
        << service_->log_tail();
    return r;
  }
  static bool ended(const common::RunInfo& r) {
    return !r.run_id.empty() && r.status != RunStatus::kQueued && r.status != RunStatus::kRunning;
  }
  // A long run under way: a full re-read of the sheet, some rows in.
  common::RunInfo start_long_run() {
    const auto before = latest().run_id;
    EXPECT_TRUE(request("trigger", /*full=*/true));
    return wait_for_latest(
        [&](const common::RunInfo& r) {
          return r.run_id != before && r.status == RunStatus::kRunning && r.progress.rows_done > 0;
        },
        30s);
  }
  double seconds(const std::string& sql, const std::string& run_id) {
    pqxx::work tx(*conn_);
    return tx.exec_params1(sql, run_id)[0].as<double>();
  }

  TempDir dir_;
  common::Config config_;
  int port_ = 0;
  std::unique_ptr<IsolatedEnvironment> env_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<common::RunStore> store_;
  std::unique_ptr<ChildProcess> service_;
  int calls_ = 0;
};

TEST_P(ProducerService, R4_TriggerCancelPauseAndResumeDoWhatTheySay) {
  WorkerThread worker(config_);
  // No service yet: the trigger is queued, and the operator is told that nobody will start it.
  if (GetParam() == Via::kCli) {
    const auto r = ctl({"trigger", source().name});
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("no producer service is running source"), std::string::npos) << r.output;
  } else {
    ASSERT_TRUE(store_->trigger(source().name, common::RunTrigger::kManual, common::WhenRunning::kRefuse).run_id.size());
  }
  start_service();
  ASSERT_TRUE(eventually([&] { return service_->running(); }, 5s));
  auto first = wait_for_latest([](const common::RunInfo& r) { return r.status == RunStatus::kCompleted; });
  EXPECT_EQ(first.trigger, common::RunTrigger::kManual);
  ASSERT_EQ(first.counters.new_records, kRows);

  // A trigger is started by the running service within a second.
  std::string said;
  ASSERT_TRUE(request("trigger", false, false, &said)) << said;
  const auto quick = wait_for_latest([&](const common::RunInfo& r) { return r.run_id != first.run_id && ended(r); });
  EXPECT_EQ(quick.status, RunStatus::kCompleted) << quick.error;
  const double start_delay =
      seconds("SELECT extract(epoch FROM started_at - created_at) FROM leadsync.sync_runs WHERE run_id = $1",
              quick.run_id);
  std::printf("trigger -> started: %.3f s\n", start_delay);
  EXPECT_LT(start_delay, 1.0);

  // While a run is under way a second trigger is refused, naming the run; with queue it waits.
  write_text_file(source().url, lead_sheet(kLongRows));
  const auto before_cancel = high_watermarks(config_.kafka, config_.kafka.topic);
  const auto running = start_long_run();
  EXPECT_FALSE(request("trigger", false, false, &said));
  EXPECT_NE(said.find(running.run_id), std::string::npos) << said;
  EXPECT_TRUE(request("trigger", false, /*queue=*/true, &said)) << said;

  // Cancel: the run (and the queued one) end cancelled, within one batch, having published
  // exactly what it counted.
  ASSERT_TRUE(request("cancel", false, false, &said)) << said;
  EXPECT_TRUE(eventually([&] { return store_->get(running.run_id)->status == RunStatus::kCancelled; }, 10s));
  const double stop_delay = seconds(
      "SELECT extract(epoch FROM r.finished_at - (SELECT max(requested_at) FROM leadsync.run_controls c "
      "WHERE c.run_id = r.run_id)) FROM leadsync.sync_runs r WHERE run_id = $1",
      running.run_id);
  std::printf("cancel -> cancelled: %.3f s\n", stop_delay);
  EXPECT_LT(stop_delay, 1.5);
  const auto cancelled = *store_->get(running.run_id);
  EXPECT_LT(cancelled.counters.rows_read, kLongRows) << "the run was not stopped mid-way";
  EXPECT_TRUE(cancelled.checkpoint.empty()) << "a cancelled run keeps no checkpoint";
  std::this_thread::sleep_for(2s);  // anything still in the producer's queue has landed by now
  const auto messages = read_messages(config_.kafka, config_.kafka.topic, before_cancel,
                                      high_watermarks(config_.kafka, config_.kafka.topic));
  EXPECT_EQ(static_cast<int64_t>(messages.size()), cancelled.counters.events_published);
  const auto queued = store_->list(source().name, 1).at(0);  // the run queued behind it
  EXPECT_NE(queued.run_id, running.run_id);
  EXPECT_EQ(queued.status, RunStatus::kCancelled);
  EXPECT_TRUE(queued.started_at.empty()) << "the queued run was started";

  // Pause: the run stops at its next batch, cancelled with reason paused, its checkpoint kept;
  // the paused source refuses triggers.
  const auto to_pause = start_long_run();
  ASSERT_TRUE(request("pause", false, false, &said)) << said;
  EXPECT_TRUE(eventually([&] { return store_->get(to_pause.run_id)->status == RunStatus::kCancelled; }, 10s));
  const auto paused = *store_->get(to_pause.run_id);
  EXPECT_EQ(paused.message.substr(0, 6), "paused") << paused.message;
  EXPECT_FALSE(paused.checkpoint.empty());
  EXPECT_FALSE(request("trigger", false, false, &said));
  EXPECT_NE(said.find("paused"), std::string::npos) << said;
  std::this_thread::sleep_for(1s);
  EXPECT_EQ(latest().run_id, paused.run_id) << "a paused source was started";

  // Resume: the service continues the paused read at once, from its checkpoint.
  ASSERT_TRUE(request("resume", false, false, &said)) << said;
  const auto resumed = wait_for_latest([&](const common::RunInfo& r) { return r.run_id != paused.run_id && ended(r); });
  EXPECT_EQ(resumed.status, RunStatus::kCompleted) << resumed.error << resumed.message;
  EXPECT_EQ(resumed.resumed_from, paused.run_id);
  std::printf("paused run read %lld rows, the resumed run %lld of %d\n",
              static_cast<long long>(paused.counters.rows_read), static_cast<long long>(resumed.counters.rows_read),
              kLongRows);
  EXPECT_EQ(paused.counters.rows_read + resumed.counters.rows_read, kLongRows);
  pqxx::work tx(*conn_);
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM leadsync.source_state WHERE source = $1", source().name)[0]
                .as<int64_t>(),
            kLongRows);
}

INSTANTIATE_TEST_SUITE_P(Via, ProducerService, ::testing::Values(Via::kCli, Via::kApi),
                         [](const auto& info) { return info.param == Via::kCli ? "Cli" : "HttpApi"; });

}  // namespace
}  // namespace leadsync::testing
