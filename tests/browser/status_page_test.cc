// R4 — the status page in a real headless browser (Debian's chromium, driven over the DevTools
// protocol by tests/browser/status_page.py): it renders the runs of the local cluster's database,
// a run's progress bar moves while the run goes on, and the page's cancel button cancels the run —
// the runner, in its own session as a producer would, sees the cancel at its next batch and ends
// the run `cancelled`.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
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

TEST(StatusPageTest, R4_ThePageRendersRunsShowsProgressMovingAndItsCancelButtonCancelsTheRun) {
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium")) << "chromium is missing: run ./dev/setup";
  auto config = isolated_example_config(unique_tag("page"));
  {
    auto conn = connect(config);
    common::migrate(*conn, config);
  }
  const auto source = config.sources.at(0).name;
  const std::string token = "page-token-" + unique_tag("t");
  producers::api::ApiServer server(config, {token, true});
  const int port = server.start("127.0.0.1:0");

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
  ChildProcess browser({"/usr/bin/python3", LEADSYNC_SOURCE_DIR "/tests/browser/status_page.py", "--url",
                        "http://127.0.0.1:" + std::to_string(port) + "/", "--token", token, "--run", run.run_id,
                        "--source", source},
                       dir.file("browser.log"));
  const auto status = browser.wait_exit(90s);
  batches.join();
  ASSERT_TRUE(status) << "the browser script did not finish\n" << browser.log_tail();
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << browser.log_tail();
  EXPECT_NE(browser.log_tail().find("\"rendered\": true"), std::string::npos) << browser.log_tail();
  EXPECT_EQ(seen.load(), RunControl::kCancel) << "the runner never saw a cancel";
  RunStore store(*session, 1s);
  const auto info = store.get(run.run_id);
  ASSERT_TRUE(info);
  EXPECT_EQ(info->status, RunStatus::kCancelled);
  EXPECT_LT(info->progress.rows_done, 2000);
}

}  // namespace
}  // namespace leadsync::testing
