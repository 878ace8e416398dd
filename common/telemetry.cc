#include "common/telemetry.h"

#include <httplib.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "common/errors.h"
#include "common/metric_names.h"

namespace leadsync::common {

Telemetry::Telemetry(const std::string& process)
    : registry_(std::make_shared<prometheus::Registry>()), last_beat_ms_(now_ms()) {
  prometheus::BuildGauge()
      .Name(metric::kBuildInfo)
      .Help("Always 1; the labels name the process and its version")
      .Register(*registry_)
      .Add({{"process", process}, {"version", LEADSYNC_VERSION}})
      .Set(1);
  ready_gauge_ = &prometheus::BuildGauge()
                      .Name(metric::kReady)
                      .Help("1 while the process is connected and able to do work (as /readyz)")
                      .Register(*registry_)
                      .Add({});
}

void Telemetry::set_ready(bool ready) {
  ready_.store(ready, std::memory_order_relaxed);
  ready_gauge_->Set(ready ? 1 : 0);
}

Telemetry::~Telemetry() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

int64_t Telemetry::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string Telemetry::render_metrics() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

int Telemetry::serve(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    throw ConfigError("--metrics-address: expected HOST:PORT, got '" + address + "'");
  }
  const auto host = address.substr(0, colon);
  int port = 0;
  try {
    port = std::stoi(address.substr(colon + 1));
  } catch (const std::exception&) {
    throw ConfigError("--metrics-address: port is not a number in '" + address + "'");
  }
  if (port < 0 || port > 65535) throw ConfigError("--metrics-address: port out of range in '" + address + "'");

  server_ = std::make_unique<httplib::Server>();
  server_->Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(render_metrics(), "text/plain; version=0.0.4; charset=utf-8");
  });
  server_->Get("/healthz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ok = healthy();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ok\n" : "main loop stalled\n", "text/plain");
  });
  server_->Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    const bool ok = ready();
    res.status = ok ? 200 : 503;
    res.set_content(ok ? "ready\n" : "not ready\n", "text/plain");
  });
  const int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound < 0) throw std::runtime_error("cannot listen on " + address + " for metrics");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return bound;
}

}  // namespace leadsync::common
