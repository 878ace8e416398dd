// The receiver of Twenty's webhooks for one `kind: twenty` source (issue 9): an HTTP server
// (cpp-httplib) on the source's `twenty.webhook.address`, authenticated by each delivery's signature
// (webhook_verifier.h), not by the control API's bearer token.
//
//   HTTP threads: body size limit (413), signature / timestamp / nonce (401, counted by reason),
//   JSON with a record of the configured object (else 400), then a bounded queue (503 when full).
//   Publisher thread: maps the record exactly as polling does (twenty_record.h + the Mapper) and
//   publishes a full image keyed by id and versioned by updatedAt (deletes by deletedAt), so that
//   polling and webhooks may arrive in any order; run_id is empty. Deliveries are not retried by
//   Twenty: a delivery lost here is picked up by the next poll, which stays the source of truth.
//   `updatedFields` goes into the audit (leadsync.field_changes, field `_updated_fields`) once Kafka
//   acknowledged the event, for entities with `audit: true`.
//
// Readiness: ready() is false while the queue is full or the publisher cannot reach Kafka.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/config.h"
#include "common/pg.h"
#include "producers/twenty/webhook_verifier.h"

namespace httplib {
class Server;
}
namespace leadsync::common {
class KafkaProducer;
}


namespace leadsync::producers {

// The receivers' metric families (names in common/metric_names.h), by source.
struct WebhookMetrics {
  explicit WebhookMetrics(prometheus::Registry& registry);
  prometheus::Family<prometheus::Counter>& requests;  // {source, result}
  prometheus::Family<prometheus::Gauge>& queue_depth;  // {source}
};

class WebhookReceiver {
 public:
  // Reads the signing secret from the variable `twenty.webhook.secret_env` names (ConfigError when
  // unset) and builds the receiver's own Kafka producer. `registry` may be null (no metrics).
  WebhookReceiver(const common::Config& config, const common::SourceConfig& source, prometheus::Registry* registry);
  ~WebhookReceiver();  // stop()
  WebhookReceiver(const WebhookReceiver&) = delete;
  WebhookReceiver& operator=(const WebhookReceiver&) = delete;

  // Binds the configured address (port 0: any free port), starts serving and publishing; returns the port.
  int start();
  void stop();

  bool ready() const;
  std::size_t queue_depth() const;
  uint64_t published() const { return published_.load(); }
  const std::string& source_name() const { return source_.name; }

 private:
  struct Delivery {
    nlohmann::json payload;
    int64_t received_micros = 0;
  };
  void routes();
  void count(const char* result);
  void publish_loop();
  void publish_batch(std::vector<Delivery>& batch);
  struct Audit {
    std::string key, event_id, fields;
  };
  void write_audit(const std::vector<Audit>& audits, const std::string& entity);

  const common::Config& config_;
  const common::SourceConfig& source_;
  const common::TwentySettings& settings_;
  twenty::WebhookVerifier verifier_;

  prometheus::Family<prometheus::Counter>* requests_ = nullptr;
  prometheus::Gauge* depth_gauge_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Delivery> queue_;
  bool stopping_ = false;
  std::atomic<bool> kafka_ok_{true};
  std::atomic<uint64_t> published_{0};

  // Destruction order: the server stops first (no new deliveries), then the publisher drains and
  // joins, then its producer is flushed and destroyed.
  std::unique_ptr<common::KafkaProducer> producer_;
  std::unique_ptr<pqxx::connection> audit_conn_;  // the publisher thread's, opened on first use
  std::thread publisher_;
  std::unique_ptr<httplib::Server> server_;
  std::thread server_thread_;
};

// The webhook receivers of the given twenty sources (those with a `twenty.webhook` section), started
// by the producer service. While any exist, a watcher reports their readiness every 200 ms through
// `readiness` (the process's /readyz), also while a long polling run holds the main loop.
class WebhookReceivers {
 public:
  WebhookReceivers(const common::Config& config, const std::vector<const common::SourceConfig*>& sources,
                   prometheus::Registry* registry, std::function<void(bool)> readiness);
  ~WebhookReceivers();
  bool ready() const;  // all of them ready (true when there are none)
  std::size_t size() const { return receivers_.size(); }

 private:
  std::vector<std::unique_ptr<WebhookReceiver>> receivers_;
  std::function<void(bool)> readiness_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread watcher_;
};

}  // namespace leadsync::producers
