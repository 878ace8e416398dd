// What the chaos tests share: a generated lead sheet on disk, leadsync-worker processes on a test's
// configuration file, a producer run in the background and a graceful stop that must exit cleanly.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>

#include "bench/gen/lead_data.h"
#include "producers/sync_run.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {

inline void write_lead_sheet_file(const std::string& path, uint64_t seed, int64_t rows) {
  std::ofstream out(path, std::ios::binary);
  bench::write_lead_sheet(out, seed, static_cast<uint64_t>(rows));
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

// A leadsync-worker process on the configuration file `config_path`; its output goes to `log_path`.
inline std::unique_ptr<ChildProcess> start_worker_process(const std::string& config_path, const std::string& log_path) {
  return std::make_unique<ChildProcess>(
      std::vector<std::string>{LEADSYNC_BINARY_DIR "/workers/leadsync-worker", "--config", config_path}, log_path);
}

// Runs the producer in the background, so that the sync is under way while the test disrupts it.
// `config` and `source` must outlive the returned future.
inline std::future<producers::RunReport> start_sync_run(const common::Config& config,
                                                        const common::SourceConfig& source) {
  return std::async(std::launch::async, [&config, &source] {
    common::KafkaProducer kafka(config.kafka);
    producers::SyncRunner runner(config, kafka, nullptr);
    return runner.run(source);
  });
}

// Stops a worker with SIGTERM, so that nothing is left running whatever the test found; it must
// exit with status 0 within `timeout`.
inline void stop_worker(ChildProcess& worker, std::chrono::seconds timeout) {
  worker.signal(SIGTERM);
  const auto status = worker.wait_exit(timeout);
  EXPECT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0)
      << "worker " << worker.describe() << " after SIGTERM:\n" << worker.log_tail();
}

}  // namespace leadsync::testing
