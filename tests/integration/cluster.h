// Test fixture support for integration tests: the real broker and database of the local cluster
// (.local/env), with per-test topics, consumer group, sources and target schema so that tests
// never see each other's data.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "common/config.h"
#include "common/pg.h"
#include "common/telemetry.h"

namespace leadsync::testing {

// The example config (examples/leadsync.yaml) pointed at the local cluster and made unique for
// this test: topic/group/dlq names, the target schema and the source names carry `tag`.
common::Config isolated_example_config(const std::string& tag, int partitions = 3);
// A fresh tag: test name + a random suffix, safe as an identifier.
std::string unique_tag(const std::string& base);

// Creates the schema and the topics of `config`; drops them again on destruction.
class IsolatedEnvironment {
 public:
  explicit IsolatedEnvironment(const common::Config& config);
  ~IsolatedEnvironment();

 private:
  common::Config config_;
};

// A worker running in a background thread until stopped (or destroyed).
class WorkerThread {
 public:
  explicit WorkerThread(const common::Config& config);
  ~WorkerThread();
  void stop();
  common::Telemetry& telemetry() { return telemetry_; }

 private:
  common::Config config_;
  common::Telemetry telemetry_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::unique_ptr<pqxx::connection> connect(const common::Config& config);
// Polls `done` every 100 ms until it returns true or `timeout` passes; returns its last answer.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout);
// Sum of everything the workers accounted for a run (applied, stale, dead-lettered).
int64_t accounted_events(pqxx::connection& conn, const std::string& run_id);
std::string source_path(const std::string& relative);

}  // namespace leadsync::testing
