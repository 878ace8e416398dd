#include "producers/api/api_server.h"

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "common/errors.h"
#include "common/pg.h"
#include "common/redact.h"
#include "common/runs.h"
#include "common/runs_json.h"
#include "producers/api/broker_status.h"
#include "producers/api/pages.h"

namespace leadsync::producers::api {
namespace {

using nlohmann::json;

constexpr int kMaxLimit = 1000;

// A refusal the handler turns into a problem document.
struct Problem {
  int status;
  std::string type;  // a URN naming the kind of problem (RFC 9457 §3.1.1)
  std::string title;
  std::string detail;
};

void send_problem(httplib::Response& res, const Problem& p, const std::string& instance) {
  res.status = p.status;
  res.set_content(json{{"type", p.type}, {"title", p.title}, {"status", p.status}, {"detail", p.detail},
                       {"instance", instance}}
                      .dump(),
                  "application/problem+json");
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

// Compares without an early exit, so that the time taken does not reveal a prefix of the token.
bool same_token(const std::string& given, const std::string& expected) {
  if (expected.empty()) return false;
  unsigned char diff = given.size() == expected.size() ? 0 : 1;
  for (std::size_t i = 0; i < given.size(); ++i) {
    diff |= static_cast<unsigned char>(given[i] ^ expected[i % expected.size()]);
  }
  return diff == 0;
}

bool query_flag(const httplib::Request& req, const json& body, const char* name) {
  if (req.has_param(name)) return req.get_param_value(name) == "true" || req.get_param_value(name) == "1";
  return body.is_object() && body.contains(name) && body[name].is_boolean() && body[name].get<bool>();
}

}  // namespace

bool is_loopback_host(const std::string& host) {
  return host == "127.0.0.1" || host == "localhost" || host == "::1" || host == "[::1]" || host.starts_with("127.");
}

ApiAccess api_access_from_env(const common::ApiConfig& api) {
  ApiAccess access;
  if (const char* v = std::getenv(api.token_env.c_str()); v && *v) access.token = v;
  const auto colon = api.address.rfind(':');
  access.loopback_only = is_loopback_host(colon == std::string::npos ? api.address : api.address.substr(0, colon));
  if (!access.loopback_only && access.token.empty()) {
    throw common::ConfigError("api.address: " + api.address + " is reachable beyond this machine; set the bearer token in " +
                              api.token_env + " (api.token_env) or bind to 127.0.0.1");
  }
  return access;
}

ApiServer::ApiServer(const common::Config& config, ApiAccess access, std::chrono::milliseconds broker_interval)
    : config_(config),
      access_(std::move(access)),
      broker_(std::make_unique<BrokerStatus>(config, broker_interval)),
      server_(std::make_unique<httplib::Server>()) {
  routes();
}

ApiServer::~ApiServer() { stop(); }

int ApiServer::start(const std::string& address) {
  const auto colon = address.rfind(':');
  if (colon == std::string::npos) throw common::ConfigError("api.address: expected HOST:PORT, got '" + address + "'");
  auto host = address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  const int port = std::atoi(address.substr(colon + 1).c_str());
  const int bound = port == 0 ? server_->bind_to_any_port(host) : (server_->bind_to_port(host, port) ? port : -1);
  if (bound < 0) throw std::runtime_error("cannot listen on " + address + " for the API");
  broker_->start();
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() is a no-op until the loop runs: wait for it, so that a quick stop never hangs.
  for (int i = 0; i < 500 && !server_->is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  spdlog::info("API and status page on http://{}:{}/", host, bound);
  return bound;
}

void ApiServer::stop() {
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
  if (broker_) broker_->stop();
}

void ApiServer::routes() {
  auto& s = *server_;
  // Authentication before routing: POSTs always, everything under /api/ beyond loopback (the page
  // and the OpenAPI document hold no data).
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    const bool data = req.path.starts_with("/api/") && req.path != "/api/v1/openapi.json";
    if (req.method != "POST" && (access_.loopback_only || !data)) return httplib::Server::HandlerResponse::Unhandled;
    if (access_.token.empty()) {
      send_problem(res,
                   {403, "urn:leadsync:problem:no-token", "Control is disabled",
                    "no API token is configured: set " + config_.api.token_env + " for leadsync-producer"},
                   req.path);
      return httplib::Server::HandlerResponse::Handled;
    }
    const auto header = req.get_header_value("Authorization");
    if (!header.starts_with("Bearer ") || !same_token(header.substr(7), access_.token)) {
      res.set_header("WWW-Authenticate", "Bearer");
      send_problem(res, {401, "urn:leadsync:problem:unauthorized", "Unauthorized", "a valid bearer token is required"},
                   req.path);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  s.set_exception_handler([](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
    Problem p{500, "urn:leadsync:problem:internal", "Internal error", "see the producer's log"};
    try {
      std::rethrow_exception(ep);
    } catch (const common::RunConflict& e) {
      p = {409, "urn:leadsync:problem:conflict", "Conflict", e.what()};
    } catch (const Problem& e) {
      p = e;
    } catch (const pqxx::broken_connection& e) {
      p = {503, "urn:leadsync:problem:database", "Database unavailable", "PostgreSQL cannot be reached"};
      spdlog::error("API {}: {}", req.path, common::redact(e.what()));
    } catch (const std::exception& e) {
      spdlog::error("API {}: {}", req.path, common::redact(e.what()));
    }
    send_problem(res, p, req.path);
  });
  s.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (!res.body.empty()) return;
    if (res.status == 404) {
      send_problem(res, {404, "urn:leadsync:problem:not-found", "Not found", "no such resource: " + req.path}, req.path);
    } else if (res.status == 400) {
      // cpp-httplib refuses a POST that has neither a body nor a Content-Length header.
      send_problem(res,
                   {400, "urn:leadsync:problem:bad-request", "Bad request",
                    "the request could not be read; a POST needs a body or 'Content-Length: 0' (curl: -d '')"},
                   req.path);
    }
  });

  // Each request has its own session: the run store's queries are short and the page polls once a second.
  auto store_for = [this](auto&& f) {
    auto conn = common::pg_connect(config_.postgres.url, "leadsync-producer-api");
    common::RunStore store(*conn, config_.runs.heartbeat_interval);
    return f(store);
  };
  auto known_source = [this](const std::string& name) -> const common::SourceConfig& {
    const auto* source = config_.source(name);
    if (!source) throw Problem{404, "urn:leadsync:problem:unknown-source", "Unknown source", "no source named '" + name + "'"};
    return *source;
  };
  auto source_json = [this](common::RunStore& store, const common::SourceConfig& src) {
    auto j = common::source_state_to_json(store.source_state(src.name));
    j["kind"] = src.kind;
    j["entity"] = src.entity;
    j["schedule_seconds"] = static_cast<double>(src.schedule.count()) / 1000.0;
    j["dead_letters"] = broker_->dead_letters(src.name);
    return j;
  };

  s.Get("/", [](const httplib::Request&, httplib::Response& res) { res.set_content(status_page(), "text/html"); });
  s.Get("/api/v1/openapi.json", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(openapi_document(), "application/json");
  });
  s.Get("/api/v1/sources", [=, this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, store_for([&](common::RunStore& store) {
                json out = json::array();
                for (const auto& src : config_.sources) out.push_back(source_json(store, src));
                return json{{"sources", out}, {"dead_letter_topic", broker_->dead_letter_topic()}};
              }));
  });
  s.Get("/api/v1/lag", [this](const httplib::Request&, httplib::Response& res) {
    send_json(res, 200, broker_->lag());
  });
  s.Get(R"(/api/v1/sources/([^/]+))", [=](const httplib::Request& req, httplib::Response& res) {
    const auto& src = known_source(req.matches[1]);
    send_json(res, 200, store_for([&](common::RunStore& store) { return source_json(store, src); }));
  });
  s.Get("/api/v1/runs", [=](const httplib::Request& req, httplib::Response& res) {
    const auto source = req.get_param_value("source");
    if (!source.empty()) known_source(source);
    int limit = 20;
    if (req.has_param("limit")) {
      const auto text = req.get_param_value("limit");
      limit = std::atoi(text.c_str());
      if (limit < 1 || limit > kMaxLimit || text.find_first_not_of("0123456789") != std::string::npos) {
        throw Problem{400, "urn:leadsync:problem:bad-parameter", "Bad parameter",
                      "limit: expected a whole number from 1 to " + std::to_string(kMaxLimit) + ", got '" + text + "'"};
      }
    }
    send_json(res, 200, store_for([&](common::RunStore& store) {
                json runs = json::array();
                for (const auto& r : store.list(source, limit)) runs.push_back(common::run_to_json(r));
                return json{{"runs", runs}};
              }));
  });
  s.Get(R"(/api/v1/runs/([^/]+))", [=](const httplib::Request& req, httplib::Response& res) {
    const std::string id = req.matches[1];
    const auto run = store_for([&](common::RunStore& store) { return store.get(id); });
    if (!run) throw Problem{404, "urn:leadsync:problem:unknown-run", "Unknown run", "no run with id '" + id + "'"};
    send_json(res, 200, common::run_to_json(*run));
  });
  s.Post(R"(/api/v1/sources/([^/]+)/(trigger|pause|resume|cancel))",
         [=](const httplib::Request& req, httplib::Response& res) {
           const auto& src = known_source(req.matches[1]);
           const std::string action = req.matches[2];
           const auto body = json::parse(req.body.empty() ? "{}" : req.body, nullptr, false);
           store_for([&](common::RunStore& store) {
             if (action == "trigger") {
               const auto r = store.trigger(
                   src.name, query_flag(req, body, "full") ? common::RunTrigger::kFull : common::RunTrigger::kManual,
                   query_flag(req, body, "queue") ? common::WhenRunning::kQueue : common::WhenRunning::kRefuse);
               send_json(res, 202,
                         {{"run_id", r.run_id},
                          {"behind_running", r.behind_running},
                          {"producer_alive", r.producer_alive},
                          {"run", common::run_to_json(*store.get(r.run_id))}});
             } else if (action == "resume") {
               const bool was = store.resume(src.name);
               send_json(res, 200, {{"source", src.name}, {"paused", false}, {"was_paused", was}});
             } else {
               const auto r = action == "pause" ? store.pause(src.name) : store.cancel(src.name);
               send_json(res, action == "pause" ? 200 : 202,
                         {{"source", src.name},
                          {"paused", action == "pause"},
                          {"cancelled_queued", r.cancelled_queued},
                          {"stopping_run", r.running.empty() ? json(nullptr) : json(r.running)}});
             }
             return 0;
           });
         });
}

}  // namespace leadsync::producers::api
