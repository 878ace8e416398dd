// Heartbeats for a run while its runner is busy in one long step that cannot heartbeat itself
// (loading a million keys' state, storing it in the transaction that completes the run): a thread
// with its own connection keeps the run's heartbeat fresh for as long as this object lives, so
// the run is not taken for a stale one. Only around such steps: between them the runner's own
// heartbeat shows that it is making progress, which this one cannot.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace leadsync::common {

class RunKeepalive {
 public:
  RunKeepalive(std::string postgres_url, std::string run_id, std::chrono::milliseconds interval);
  ~RunKeepalive();
  RunKeepalive(const RunKeepalive&) = delete;
  RunKeepalive& operator=(const RunKeepalive&) = delete;

 private:
  void loop();

  std::string url_, run_id_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace leadsync::common
