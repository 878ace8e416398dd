// Verification of Twenty's signed webhook deliveries (sources.md "Twenty CRM" Webhook, issue 9):
// X-Twenty-Webhook-Signature = hex(HMAC-SHA256(secret, timestamp + ":" + raw body)), compared in
// constant time on the raw bytes as received (never on re-serialised JSON); X-Twenty-Webhook-Timestamp
// (ms) within a window of now; X-Twenty-Webhook-Nonce not seen before within that window.
//
// The nonce is not covered by the signature, so the cache stops a replay of the same request, not
// a resend of a captured body under a new nonce; that one carries the same record and version, and
// the workers' version guard makes it a no-op. Nonces are remembered only until their timestamp
// leaves the window (after that the timestamp check refuses them anyway), and at most `capacity`
// of them: past it the oldest are forgotten first.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace leadsync::producers::twenty {

enum class WebhookVerdict { kAccepted, kMissingHeaders, kBadSignature, kStaleTimestamp, kReplayedNonce };
// "accepted", "missing_headers", "bad_signature", "stale_timestamp", "replayed_nonce" (metric labels).
const char* verdict_name(WebhookVerdict verdict);

class WebhookVerifier {
 public:
  WebhookVerifier(std::string secret, std::chrono::milliseconds tolerance, std::size_t nonce_capacity);

  // Checks, in this order: headers present, signature, timestamp window, nonce. A nonce is
  // remembered only for a delivery that passed the first three, so forged requests cannot fill
  // the cache. `now_ms`: the receiver's clock, ms since the epoch.
  WebhookVerdict verify(std::string_view timestamp, std::string_view nonce, std::string_view signature,
                        std::string_view body, int64_t now_ms);

  std::size_t remembered_nonces() const;

 private:
  bool signature_matches(std::string_view timestamp, std::string_view signature, std::string_view body) const;
  bool remember(std::string_view nonce, int64_t expires_ms, int64_t now_ms);

  std::string secret_;
  int64_t tolerance_ms_;
  std::size_t capacity_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, int64_t> nonces_;  // nonce -> when it may be forgotten (ms)
  std::deque<std::pair<int64_t, std::string>> order_;  // arrival order, for expiry and eviction
};

}  // namespace leadsync::producers::twenty
