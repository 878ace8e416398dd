// R4 — the status page in a real headless browser (Debian's chromium, driven over the DevTools
// protocol by tests/browser/status_page.py): it renders the runs of the local cluster's database,
// the dead letters a real worker wrote for the source under their error class and the workers'
// consumer lag with the group's member count as the broker reports them, a run's progress bar moves
// while the run goes on, and the page's cancel button cancels the run — the runner, in its own
// session as a producer would, sees the cancel at its next batch and ends the run `cancelled`.
//
// LEADSYNC_STATUS_PAGE_SCREENSHOT=FILE saves the page as a PNG while the bar moves (the README's
// picture: LEADSYNC_STATUS_PAGE_SCREENSHOT=$PWD/producers/api/status_page.png).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "common/runs.h"
#include "common/schema.h"
#include "producers/api/api_server.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunControl;
using common::RunStatus;
using common::RunStore;

TEST(StatusPageTest, R4_ThePageRendersRunsDeadLettersAndLagShowsProgressMovingAndItsCancelButtonCancelsTheRun) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "chromium is missing: run ./dev/setup";
  auto config = isolated_example_config(unique_tag("page"));
  IsolatedEnvironment env(config);  // schema and topics
  const auto source = config.sources.at(0).name;
  const std::string token = "page-token-" + unique_tag("t");
  producers::api::ApiServer server(config, {token, true}, 500ms);
  const int port = server.start("127.0.0.1:0");

  // A poison event of the source, dead-lettered by a real worker; then, with the worker stopped,
  // events that nobody consumes: the group's lag.
  common::KafkaProducer kafka(config.kafka);
  const auto& entity = config.sources.at(0).entity;
  produce_event(kafka, config.kafka,
                change_event(source, entity, "poison-1", leadsync::v1::OP_UPSERT, 1,
                             {{"favourite_colour", text("teal")}}, "run-" + unique_tag("dl")));
  ASSERT_TRUE(kafka.flush(30s));
  {
    WorkerThread worker(config);
    ASSERT_TRUE(eventually(
        [&] {
          try {  // a topic just created may not have its leader yet
            return sum(high_watermarks(config.kafka, config.kafka.dlq_topic)) >= 1;
          } catch (const std::exception&) {
            return false;
          }
        },
        60s))
        << "the worker did not dead-letter the poison event";
  }
  const auto dead = read_topic(config.kafka, config.kafka.dlq_topic);
  ASSERT_EQ(dead.size(), 1u);
  const auto error_class = dead[0].header("leadsync-error-class");
  ASSERT_FALSE(error_class.empty());
  constexpr int kBehind = 4;
  for (int i = 0; i < kBehind; ++i) kafka.produce(config.kafka.topic, entity + "/later-" + std::to_string(i), "x");
  ASSERT_TRUE(kafka.flush(30s));

  // A run of 20 s unless cancelled: 2,000 rows, 100 every second.
  auto session = connect(config);
  RunStore runner(*session, 500ms);
  const auto run = runner.claim(source, common::RunTrigger::kManual);
  std::atomic<RunControl> seen{RunControl::kContinue};
  std::thread batches([&] {
    common::RunCounters c;
    for (int64_t rows = 0; rows < 2000; rows += 25) {
      c.rows_read = rows;
      const auto control = runner.heartbeat(run, {rows, 2000, std::nullopt, "reading"}, c);
      if (control != RunControl::kContinue) {
        seen = control;
        runner.finish(run, RunStatus::kCancelled, c, "cancelled by an operator", "");
        return;
      }
      std::this_thread::sleep_for(250ms);
    }
    runner.finish(run, RunStatus::kCompleted, c, "", "");
  });

  TempDir dir;
  std::vector<std::string> argv{"/usr/bin/python3", LEADSYNC_SOURCE_DIR "/tests/browser/status_page.py",
                                "--url", "http://127.0.0.1:" + std::to_string(port) + "/",
                                "--token", token, "--run", run.run_id, "--source", source,
                                "--dead-letters", error_class + "=1",
                                "--lag", config.kafka.topic + "=" + std::to_string(kBehind),
                                "--lag", config.kafka.retry_topic(1) + "=0",
                                "--members", "0"};
  if (const char* shot = std::getenv("LEADSYNC_STATUS_PAGE_SCREENSHOT"); shot && *shot) {
    argv.insert(argv.end(), {"--screenshot", shot});
  }
  ChildProcess browser(argv, dir.file("browser.log"));
  const auto status = browser.wait_exit(90s);
  batches.join();
  ASSERT_TRUE(status) << "the browser script did not finish\n" << browser.log_tail();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << browser.log_tail();
  EXPECT_NE(browser.log_tail().find("\"rendered\": true"), std::string::npos) << browser.log_tail();
  std::cout << "browser saw: " << browser.log_tail(1000) << "\n";
  EXPECT_EQ(seen.load(), RunControl::kCancel) << "the runner never saw a cancel";
  RunStore store(*session, 1s);
  const auto info = store.get(run.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::kCancelled);
  EXPECT_LT(info->progress.rows_done, 2000);
}

}  // namespace
}  // namespace leadsync::testing
