// The producer's HTTP API and status page (design.md §6, R4): sources and runs as JSON under
// /api/v1, control (trigger, pause, resume, cancel) as POSTs, errors as RFC 9457 problem details,
// an OpenAPI document at /api/v1/openapi.json and a self-contained status page at /.
//
// Every request reads and writes the run store in PostgreSQL (common/runs.h), never the producer's
// memory, so the API tells the truth about runs of any producer process and what it changes is
// obeyed by whichever producer runs the source. The two figures that live in Kafka — the workers'
// consumer lag (GET /api/v1/lag) and the dead letters per source and class (`dead_letters` of a
// source) — come from a background sampler of the broker (broker_status.h).
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common/config.h"

namespace httplib {
class Server;
}

namespace leadsync::producers::api {

// Who may do what: POSTs always need the token (none configured: POSTs are refused); on a bind
// beyond loopback every /api request needs it, and starting without a token is refused.
struct ApiAccess {
  std::string token;
  bool loopback_only = true;
};

// The token from the environment variable named by `api.token_env`; throws ConfigError when the
// address is not a loopback address and the variable is empty.
ApiAccess api_access_from_env(const common::ApiConfig& api);
bool is_loopback_host(const std::string& host);

class BrokerStatus;

class ApiServer {
 public:
  // `broker_interval`: how often the consumer lag and the dead letters are read from Kafka.
  ApiServer(const common::Config& config, ApiAccess access,
            std::chrono::milliseconds broker_interval = std::chrono::seconds(2));
  ~ApiServer();  // stops serving and joins the thread
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds HOST:PORT (port 0: any free port) and serves in a background thread; returns the port.
  // Throws when the address cannot be bound.
  int start(const std::string& address);
  void stop();

 private:
  void routes();

  const common::Config& config_;
  ApiAccess access_;
  std::unique_ptr<BrokerStatus> broker_;
  // Destroyed after the thread is joined (stop()).
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace leadsync::producers::api
