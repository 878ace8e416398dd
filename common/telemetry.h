// The operational HTTP endpoint of every process (--metrics-address): /metrics in the Prometheus
// text format, /healthz (the main loop is alive) and /readyz (connected and able to do work).
#pragma once

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace leadsync::common {

class Telemetry {
 public:
  // `process` labels leadsync_build_info (leadsync-worker, leadsync-producer, leadsyncctl).
  explicit Telemetry(const std::string& process = "leadsync");
  ~Telemetry();  // stops the server thread
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> registry_ptr() { return registry_; }

  // Serves on HOST:PORT (port 0 picks a free one). Throws ConfigError on a malformed address and
  // std::runtime_error when the port cannot be bound. Returns the bound port.
  int serve(const std::string& address);

  // The main loop calls this every iteration; /healthz fails when it stalls for `stall_after`.
  void heartbeat() { last_beat_ms_.store(now_ms(), std::memory_order_relaxed); }
  void set_ready(bool ready);
  void set_stall_after(std::chrono::milliseconds d) { stall_after_ms_ = d.count(); }

  bool healthy() const { return now_ms() - last_beat_ms_.load(std::memory_order_relaxed) <= stall_after_ms_; }
  bool ready() const { return ready_.load(std::memory_order_relaxed); }
  std::string render_metrics() const;

 private:
  static int64_t now_ms();

  std::shared_ptr<prometheus::Registry> registry_;
  std::atomic<int64_t> last_beat_ms_;
  std::atomic<bool> ready_{false};
  prometheus::Gauge* ready_gauge_ = nullptr;  // owned by registry_
  int64_t stall_after_ms_ = 30'000;
  // The server is stopped and its thread joined before the registry goes away.
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace leadsync::common
