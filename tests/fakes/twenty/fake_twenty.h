// A fake Twenty CRM REST server for tests (sources.md "Twenty CRM"), on loopback with cpp-httplib.
// Usable inside a gtest test (construct it, point an adapter at base_url(), read its counters) and
// as a small executable (fake_twenty_main.cc).
//
//   GET    /rest/{people|companies}?filter=&order_by=updatedAt,id&limit=&starting_after=
//   GET    /rest/{people|companies}/{id}
//   POST   /rest/{people|companies}                 create (201)
//   PATCH  /rest/{people|companies}/{id}            update; composite fields merged by subfield
//   DELETE /rest/{people|companies}/{id}            soft delete (deletedAt); ?soft_delete=false destroys
//   POST   /rest/batch/{people|companies}[?upsert=true]   at most 60 records, all or nothing (201)
//   GET    /_fake/stats, POST /_fake/fail?count=&status=&retry_after=   (no auth; the executable's controls)
//
// Every /rest request needs `Authorization: Bearer <api key>` (401 otherwise). 429s come in bursts a
// test asks for (fail_next) or from a request budget per window (set_rate_limit), with or without a
// Retry-After header. Every change can be sent as a signed webhook (set_webhook).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/fakes/twenty/twenty_store.h"
#include "tests/fakes/twenty/webhook_sender.h"

namespace httplib {
class Server;
}

namespace leadsync::fakes::twenty {

struct FakeTwentyOptions {
  std::string api_key = "fake-twenty-key";
  std::string host = "127.0.0.1";
  int port = 0;  // 0: any free port
};

// kSend: each change is POSTed by a background thread, in order, as it happens (like Twenty);
// kHold: deliveries are kept for the test to take (take_held) and send in any order it likes.
enum class WebhookMode { kOff, kSend, kHold };

class FakeTwenty {
 public:
  explicit FakeTwenty(FakeTwentyOptions options = {});
  ~FakeTwenty();  // stops the server and the webhook thread
  FakeTwenty(const FakeTwenty&) = delete;
  FakeTwenty& operator=(const FakeTwenty&) = delete;

  int port() const { return port_; }
  std::string base_url() const;  // http://127.0.0.1:PORT/rest/
  const std::string& api_key() const { return options_.api_key; }
  TwentyStore& store() { return store_; }

  // The next `count` /rest requests fail with `status`; 429s carry Retry-After when given.
  void fail_next(int count, int status = 429, std::optional<int> retry_after_seconds = 1);
  // At most `requests` /rest requests per `window`; past it 429 (with Retry-After: seconds to the
  // window's end when `send_retry_after`). 0 turns it off.
  void set_rate_limit(int requests, std::chrono::milliseconds window, bool send_retry_after = true);
  // Runs before each list page is served (a test updates records in the middle of a read here).
  void before_list(std::function<void(Object object, int page)> hook);

  // Counters.
  int requests() const;                               // /rest requests answered, any status
  int requests_with_status(int status) const;         // e.g. 429
  int list_requests() const;                          // GETs of a list page
  int batch_requests() const;                         // POST /rest/batch/...
  std::vector<std::string> request_log() const;       // "GET /rest/people?..." in order (secrets excluded)

  // Webhooks: every change of the store from now on becomes a delivery to `url`.
  void set_webhook(const std::string& url, const std::string& secret, WebhookMode mode);
  std::vector<Delivery> take_held();      // kHold: the deliveries so far, oldest first
  bool wait_webhooks_sent(std::chrono::milliseconds timeout);  // kSend: queue drained
  std::vector<int> webhook_statuses() const;  // kSend: the receiver's answers, in order
  const WebhookSender* webhook_sender() const { return sender_.get(); }

 private:
  struct Admission {
    int status = 0;  // 0: go ahead
    std::optional<int> retry_after;
  };
  Admission admit();
  void routes();
  void webhook_loop();
  void enqueue(const Change& change);

  FakeTwentyOptions options_;
  TwentyStore store_;
  int port_ = 0;

  mutable std::mutex mu_;
  int fail_count_ = 0;
  int fail_status_ = 429;
  std::optional<int> fail_retry_after_;
  int limit_requests_ = 0;
  std::chrono::milliseconds limit_window_{60'000};
  bool limit_retry_after_ = true;
  std::deque<std::chrono::steady_clock::time_point> recent_;
  std::function<void(Object, int)> before_list_;
  int list_pages_ = 0;
  int requests_ = 0;
  int list_requests_ = 0;
  int batch_requests_ = 0;
  std::map<int, int> by_status_;
  std::vector<std::string> log_;

  WebhookMode webhook_mode_ = WebhookMode::kOff;
  std::shared_ptr<WebhookSender> sender_;
  std::deque<Delivery> outbox_;  // kSend: to post; kHold: to take
  std::vector<int> webhook_statuses_;
  bool webhook_busy_ = false;
  bool stopping_ = false;
  std::condition_variable webhook_cv_;

  // Destruction order: the server stops (no handler runs) before the webhook thread is joined.
  std::thread webhook_thread_;
  std::unique_ptr<httplib::Server> server_;
  std::thread server_thread_;
};

}  // namespace leadsync::fakes::twenty
