#include "tests/fakes/twenty/fake_twenty.h"

#include <stdexcept>

#include <httplib.h>

namespace leadsync::fakes::twenty {
namespace {

using Clock = std::chrono::steady_clock;

std::string capitalized(const std::string& s) {
  std::string out = s;
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(body.dump(), "application/json");
}

void send_error(httplib::Response& res, const WriteError& error) {
  static const std::map<int, std::string> names = {
      {400, "BadRequestException"}, {401, "UNAUTHENTICATED"}, {404, "NotFoundException"}, {429, "TooManyRequests"}};
  auto it = names.find(error.status);
  send_json(res, error.status,
            {{"statusCode", error.status},
             {"error", it == names.end() ? "Error" : it->second},
             {"messages", json::array({error.message})}});
}

std::optional<json> parse_body(const httplib::Request& req, httplib::Response& res) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded()) {
    send_error(res, {400, "the request body is not JSON"});
    return std::nullopt;
  }
  return body;
}

}  // namespace

FakeTwenty::FakeTwenty(FakeTwentyOptions options) : options_(std::move(options)) {
  server_ = std::make_unique<httplib::Server>();
  routes();
  port_ = options_.port == 0 ? server_->bind_to_any_port(options_.host)
                             : (server_->bind_to_port(options_.host, options_.port) ? options_.port : -1);
  if (port_ <= 0) throw std::runtime_error("fake Twenty: cannot bind " + options_.host);
  server_thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() before listen started would be lost (and the join would hang): wait for it.
  while (!server_->is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  webhook_thread_ = std::thread([this] { webhook_loop(); });
  store_.on_change([this](const Change& change) { enqueue(change); });
}

FakeTwenty::~FakeTwenty() {
  server_->stop();
  if (server_thread_.joinable()) server_thread_.join();
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  webhook_cv_.notify_all();
  if (webhook_thread_.joinable()) webhook_thread_.join();
}

std::string FakeTwenty::base_url() const { return "http://" + options_.host + ":" + std::to_string(port_) + "/rest/"; }

void FakeTwenty::fail_next(int count, int status, std::optional<int> retry_after_seconds) {
  std::lock_guard lock(mu_);
  fail_count_ = count;
  fail_status_ = status;
  fail_retry_after_ = retry_after_seconds;
}

void FakeTwenty::set_rate_limit(int requests, std::chrono::milliseconds window, bool send_retry_after) {
  std::lock_guard lock(mu_);
  limit_requests_ = requests;
  limit_window_ = window;
  limit_retry_after_ = send_retry_after;
  recent_.clear();
}

void FakeTwenty::before_list(std::function<void(Object, int)> hook) {
  std::lock_guard lock(mu_);
  before_list_ = std::move(hook);
  list_pages_ = 0;
}

FakeTwenty::Admission FakeTwenty::admit() {
  std::lock_guard lock(mu_);
  ++requests_;
  if (fail_count_ > 0) {
    --fail_count_;
    return {fail_status_, fail_status_ == 429 ? fail_retry_after_ : std::nullopt};
  }
  if (limit_requests_ > 0) {
    auto now = Clock::now();
    while (!recent_.empty() && now - recent_.front() >= limit_window_) recent_.pop_front();
    if (static_cast<int>(recent_.size()) >= limit_requests_) {
      auto wait = std::chrono::duration_cast<std::chrono::seconds>(limit_window_ - (now - recent_.front())).count() + 1;
      return {429, limit_retry_after_ ? std::optional<int>(static_cast<int>(wait)) : std::nullopt};
    }
    recent_.push_back(now);
  }
  return {};
}

int FakeTwenty::requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

int FakeTwenty::requests_with_status(int status) const {
  std::lock_guard lock(mu_);
  auto it = by_status_.find(status);
  return it == by_status_.end() ? 0 : it->second;
}

int FakeTwenty::list_requests() const {
  std::lock_guard lock(mu_);
  return list_requests_;
}

int FakeTwenty::batch_requests() const {
  std::lock_guard lock(mu_);
  return batch_requests_;
}

std::vector<std::string> FakeTwenty::request_log() const {
  std::lock_guard lock(mu_);
  return log_;
}

void FakeTwenty::routes() {
  auto& s = *server_;
  // Authentication, the 429 bursts and the request log, before any /rest route.
  s.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/rest/", 0) != 0) return httplib::Server::HandlerResponse::Unhandled;
    {
      std::lock_guard lock(mu_);
      std::string line = req.method + " " + req.path;
      if (!req.params.empty()) {
        char sep = '?';
        for (const auto& [k, v] : req.params) {
          line += sep + k + "=" + v;
          sep = '&';
        }
      }
      log_.push_back(std::move(line));
    }
    if (req.get_header_value("Authorization") != "Bearer " + options_.api_key) {
      std::lock_guard lock(mu_);
      ++requests_;
      send_error(res, {401, "Missing or invalid API key"});
      return httplib::Server::HandlerResponse::Handled;
    }
    Admission a = admit();
    if (a.status != 0) {
      if (a.retry_after) res.set_header("Retry-After", std::to_string(*a.retry_after));
      send_error(res, {a.status, a.status == 429 ? "Too many requests" : "Injected failure"});
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Runs once per answer, whichever handler gave it, before the answer is written (so a client
  // that has its answer sees it counted; the logger would run after the write).
  s.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    if (req.path.rfind("/rest/", 0) != 0) return;
    std::lock_guard lock(mu_);
    ++by_status_[res.status];
  });

  s.Get(R"(/rest/(people|companies))", [this](const httplib::Request& req, httplib::Response& res) {
    Object object = *object_from_plural(req.matches[1]);
    std::function<void(Object, int)> hook;
    int page = 0;
    {
      std::lock_guard lock(mu_);
      ++list_requests_;
      hook = before_list_;
      page = list_pages_++;
    }
    if (hook) hook(object, page);
    ListQuery q;
    q.filter = req.get_param_value("filter");
    q.order_by = req.get_param_value("order_by");
    q.starting_after = req.get_param_value("starting_after");
    if (req.has_param("limit")) {
      try {
        q.limit = std::stoi(req.get_param_value("limit"));
      } catch (const std::exception&) {
        return send_error(res, {400, "limit must be an integer"});
      }
    }
    try {
      ListResult r = store_.list(object, q);
      send_json(res, 200,
                {{"data", {{plural_name(object), r.records}}},
                 {"totalCount", r.total_count},
                 {"pageInfo",
                  {{"hasNextPage", r.has_next_page},
                   {"startCursor", r.start_cursor.empty() ? json(nullptr) : json(r.start_cursor)},
                   {"endCursor", r.end_cursor.empty() ? json(nullptr) : json(r.end_cursor)}}}});
    } catch (const WriteError& e) {
      send_error(res, e);
    }
  });

  s.Get(R"(/rest/(people|companies)/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Object object = *object_from_plural(req.matches[1]);
    auto record = store_.get(object, req.matches[2]);
    if (!record || !(*record)["deletedAt"].is_null()) return send_error(res, {404, "Record not found"});
    send_json(res, 200, {{"data", {{singular_name(object), *record}}}});
  });

  s.Post(R"(/rest/(people|companies))", [this](const httplib::Request& req, httplib::Response& res) {
    Object object = *object_from_plural(req.matches[1]);
    auto body = parse_body(req, res);
    if (!body) return;
    auto r = store_.create(object, *body, WriteOrigin::kApi);
    if (auto* e = std::get_if<WriteError>(&r)) return send_error(res, *e);
    send_json(res, 201, {{"data", {{"create" + capitalized(singular_name(object)), std::get<json>(r)}}}});
  });

  s.Patch(R"(/rest/(people|companies)/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Object object = *object_from_plural(req.matches[1]);
    auto body = parse_body(req, res);
    if (!body) return;
    auto r = store_.update(object, req.matches[2], *body, WriteOrigin::kApi);
    if (auto* e = std::get_if<WriteError>(&r)) return send_error(res, *e);
    send_json(res, 200, {{"data", {{"update" + capitalized(singular_name(object)), std::get<json>(r)}}}});
  });

  s.Delete(R"(/rest/(people|companies)/([^/]+))", [this](const httplib::Request& req, httplib::Response& res) {
    Object object = *object_from_plural(req.matches[1]);
    std::string id = req.matches[2];
    if (req.get_param_value("soft_delete") == "false") {
      if (!store_.destroy(object, id)) return send_error(res, {404, "Record not found"});
    } else {
      auto r = store_.soft_delete(object, id, WriteOrigin::kApi);
      if (auto* e = std::get_if<WriteError>(&r)) return send_error(res, *e);
    }
    send_json(res, 200, {{"data", {{"delete" + capitalized(singular_name(object)), {{"id", id}}}}}});
  });

  s.Post(R"(/rest/batch/(people|companies))", [this](const httplib::Request& req, httplib::Response& res) {
    Object object = *object_from_plural(req.matches[1]);
    {
      std::lock_guard lock(mu_);
      ++batch_requests_;
    }
    auto body = parse_body(req, res);
    if (!body) return;
    auto r = store_.create_many(object, *body, req.get_param_value("upsert") == "true", WriteOrigin::kApi);
    if (auto* e = std::get_if<WriteError>(&r)) return send_error(res, *e);
    send_json(res, 201, {{"data", {{"create" + capitalized(plural_name(object)), std::get<std::vector<json>>(r)}}}});
  });

  s.Get("/_fake/stats", [this](const httplib::Request&, httplib::Response& res) {
    json writes = store_.api_writes_by_id();
    send_json(res, 200,
              {{"requests", requests()},
               {"rate_limited", requests_with_status(429)},
               {"batch_requests", batch_requests()},
               {"api_creates", store_.api_creates()},
               {"api_writes", store_.total_api_writes()},
               {"api_writes_by_id", writes},
               {"people", store_.size(Object::kPeople)},
               {"companies", store_.size(Object::kCompanies)}});
  });

  s.Post("/_fake/fail", [this](const httplib::Request& req, httplib::Response& res) {
    int count = req.has_param("count") ? std::stoi(req.get_param_value("count")) : 1;
    int status = req.has_param("status") ? std::stoi(req.get_param_value("status")) : 429;
    std::optional<int> retry_after;
    if (req.has_param("retry_after")) retry_after = std::stoi(req.get_param_value("retry_after"));
    fail_next(count, status, retry_after);
    send_json(res, 200, {{"failing", count}});
  });
}

void FakeTwenty::set_webhook(const std::string& url, const std::string& secret, WebhookMode mode) {
  std::lock_guard lock(mu_);
  webhook_mode_ = mode;
  sender_ = mode == WebhookMode::kOff ? nullptr : std::make_shared<WebhookSender>(url, secret);
  outbox_.clear();
}

void FakeTwenty::enqueue(const Change& change) {
  {
    std::lock_guard lock(mu_);
    if (webhook_mode_ == WebhookMode::kOff || !sender_) return;
    outbox_.push_back(sender_->make(change));
  }
  webhook_cv_.notify_all();
}

std::vector<Delivery> FakeTwenty::take_held() {
  std::lock_guard lock(mu_);
  if (webhook_mode_ != WebhookMode::kHold) return {};
  std::vector<Delivery> out(outbox_.begin(), outbox_.end());
  outbox_.clear();
  return out;
}

bool FakeTwenty::wait_webhooks_sent(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return webhook_cv_.wait_for(lock, timeout, [this] {
    return webhook_mode_ != WebhookMode::kSend || (outbox_.empty() && !webhook_busy_);
  });
}

std::vector<int> FakeTwenty::webhook_statuses() const {
  std::lock_guard lock(mu_);
  return webhook_statuses_;
}

void FakeTwenty::webhook_loop() {
  std::unique_lock lock(mu_);
  for (;;) {
    webhook_cv_.wait(lock, [this] { return stopping_ || (webhook_mode_ == WebhookMode::kSend && !outbox_.empty()); });
    if (stopping_) return;
    Delivery d = std::move(outbox_.front());
    outbox_.pop_front();
    webhook_busy_ = true;
    std::shared_ptr<const WebhookSender> sender = sender_;
    lock.unlock();
    int status = sender->post(d);
    lock.lock();
    webhook_statuses_.push_back(status);
    webhook_busy_ = false;
    webhook_cv_.notify_all();
  }
}

}  // namespace leadsync::fakes::twenty
