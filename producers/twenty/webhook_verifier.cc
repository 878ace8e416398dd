#include "producers/twenty/webhook_verifier.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <charconv>
#include <memory>

namespace leadsync::producers::twenty {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

const char* verdict_name(WebhookVerdict verdict) {
  switch (verdict) {
    case WebhookVerdict::kAccepted: return "accepted";
    case WebhookVerdict::kMissingHeaders: return "missing_headers";
    case WebhookVerdict::kBadSignature: return "bad_signature";
    case WebhookVerdict::kStaleTimestamp: return "stale_timestamp";
    case WebhookVerdict::kReplayedNonce: return "replayed_nonce";
  }
  return "unknown";
}

WebhookVerifier::WebhookVerifier(std::string secret, std::chrono::milliseconds tolerance, std::size_t nonce_capacity)
    : secret_(std::move(secret)), tolerance_ms_(tolerance.count()), capacity_(nonce_capacity) {}

bool WebhookVerifier::signature_matches(std::string_view timestamp, std::string_view signature,
                                        std::string_view body) const {
  unsigned char given[EVP_MAX_MD_SIZE];
  if (signature.size() != 64) return false;
  for (std::size_t i = 0; i < 32; ++i) {
    const int hi = hex_digit(signature[2 * i]), lo = hex_digit(signature[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    given[i] = static_cast<unsigned char>(hi << 4 | lo);
  }
  // HMAC over timestamp ":" body without copying the body into one buffer (OpenSSL 3's EVP_MAC).
  std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> hmac(EVP_MAC_fetch(nullptr, "HMAC", nullptr), &EVP_MAC_free);
  if (!hmac) return false;
  std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(EVP_MAC_CTX_new(hmac.get()), &EVP_MAC_CTX_free);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0), OSSL_PARAM_construct_end()};
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t mac_len = 0;
  if (!ctx ||
      !EVP_MAC_init(ctx.get(), reinterpret_cast<const unsigned char*>(secret_.data()), secret_.size(), params) ||
      !EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(timestamp.data()), timestamp.size()) ||
      !EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(":"), 1) ||
      !EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(body.data()), body.size()) ||
      !EVP_MAC_final(ctx.get(), mac, &mac_len, sizeof mac) || mac_len != 32) {
    return false;
  }
  return CRYPTO_memcmp(mac, given, 32) == 0;  // constant time
}

bool WebhookVerifier::remember(std::string_view nonce, int64_t expires_ms, int64_t now_ms) {
  std::lock_guard lock(mu_);
  while (!order_.empty() && (order_.front().first < now_ms || order_.size() >= capacity_)) {
    auto it = nonces_.find(order_.front().second);
    if (it != nonces_.end() && it->second == order_.front().first) nonces_.erase(it);
    order_.pop_front();
  }
  auto [it, inserted] = nonces_.try_emplace(std::string(nonce), expires_ms);
  if (!inserted) {
    if (it->second >= now_ms) return false;
    it->second = expires_ms;  // an expired entry not yet swept
  }
  order_.emplace_back(expires_ms, std::string(nonce));
  return true;
}

std::size_t WebhookVerifier::remembered_nonces() const {
  std::lock_guard lock(mu_);
  return nonces_.size();
}

WebhookVerdict WebhookVerifier::verify(std::string_view timestamp, std::string_view nonce, std::string_view signature,
                                       std::string_view body, int64_t now_ms) {
  if (timestamp.empty() || nonce.empty() || signature.empty() || nonce.size() > 200) {
    return WebhookVerdict::kMissingHeaders;
  }
  if (!signature_matches(timestamp, signature, body)) return WebhookVerdict::kBadSignature;
  int64_t ts = 0;
  const auto [end, ec] = std::from_chars(timestamp.data(), timestamp.data() + timestamp.size(), ts);
  if (ec != std::errc() || end != timestamp.data() + timestamp.size()) return WebhookVerdict::kStaleTimestamp;
  if (ts < now_ms - tolerance_ms_ || ts > now_ms + tolerance_ms_) return WebhookVerdict::kStaleTimestamp;
  if (!remember(nonce, ts + tolerance_ms_, now_ms)) return WebhookVerdict::kReplayedNonce;
  return WebhookVerdict::kAccepted;
}

}  // namespace leadsync::producers::twenty
