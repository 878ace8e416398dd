// The fake Twenty's webhook sender (tests only; sources.md "Twenty CRM" Webhook): builds Twenty's
// delivery body, signs it — X-Twenty-Webhook-Signature = hex(HMAC-SHA256(secret, timestamp + ":" +
// raw body)), X-Twenty-Webhook-Timestamp in ms, X-Twenty-Webhook-Nonce — and POSTs it. A test can
// also spoil a delivery on purpose: a wrong signature, a stale timestamp, a nonce used before, the
// same delivery twice, deliveries in any order (they are plain values: keep them, reorder, resend).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/fakes/twenty/twenty_store.h"

namespace leadsync::fakes::twenty {

struct Delivery {
  std::string body;       // the raw bytes that were signed
  std::string timestamp;  // ms since the epoch, as text
  std::string nonce;
  std::string signature;  // lower-case hex
};

struct SignOptions {
  std::optional<int64_t> timestamp_ms;  // default: now (set it minutes back for a stale delivery)
  std::optional<std::string> nonce;     // default: a fresh random one (reuse one for a replay)
};

// hex(HMAC-SHA256(secret, timestamp + ":" + body)).
std::string webhook_signature(const std::string& secret, const std::string& timestamp, const std::string& body);

// Twenty's delivery body for a change: eventName "person.updated", objectMetadata, workspaceId,
// webhookId, eventDate, record (the whole record after the change), updatedFields (updates only).
nlohmann::json webhook_payload(const Change& change);

class WebhookSender {
 public:
  // url: where the receiver listens, http://127.0.0.1:PORT/some/path.
  WebhookSender(std::string url, std::string secret);

  Delivery make(const nlohmann::json& payload, const SignOptions& options = {}) const;
  Delivery make(const Change& change, const SignOptions& options = {}) const {
    return make(webhook_payload(change), options);
  }
  // The same delivery with one hex digit of its signature changed.
  static Delivery with_bad_signature(Delivery delivery);

  // POSTs the delivery; the receiver's HTTP status, or -1 when it could not be reached.
  int post(const Delivery& delivery) const;
  // POSTs a body as it is, with the given headers only (a test of missing headers or of the size limit).
  int post_raw(const std::string& body, const std::vector<std::pair<std::string, std::string>>& headers) const;

  const std::string& url() const { return url_; }

 private:
  std::string url_;
  std::string host_;
  int port_ = 0;
  std::string path_;
  std::string secret_;
};

}  // namespace leadsync::fakes::twenty
