#include "tests/fakes/twenty/webhook_sender.h"

#include <chrono>
#include <random>
#include <stdexcept>

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

namespace leadsync::fakes::twenty {
namespace {

std::string hex(const unsigned char* data, std::size_t n) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 0xF]);
  }
  return out;
}

std::string random_nonce() {
  static thread_local std::mt19937_64 gen(std::random_device{}());
  unsigned char bytes[16];
  for (auto& b : bytes) b = static_cast<unsigned char>(gen());
  return hex(bytes, sizeof bytes);
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string event_suffix(ChangeKind kind) {
  switch (kind) {
    case ChangeKind::kCreated: return "created";
    case ChangeKind::kUpdated: return "updated";
    case ChangeKind::kDeleted: return "deleted";
    case ChangeKind::kRestored: return "restored";
    case ChangeKind::kDestroyed: return "destroyed";
  }
  return "updated";
}

}  // namespace

std::string webhook_signature(const std::string& secret, const std::string& timestamp, const std::string& body) {
  std::string message = timestamp + ":" + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len)) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return hex(mac, mac_len);
}

nlohmann::json webhook_payload(const Change& change) {
  nlohmann::json payload = {
      {"eventName", singular_name(change.object) + "." + event_suffix(change.kind)},
      {"objectMetadata",
       {{"id", change.object == Object::kPeople ? "20202020-0000-4000-8000-0000000000a1"
                                                : "20202020-0000-4000-8000-0000000000a2"},
        {"nameSingular", singular_name(change.object)}}},
      {"workspaceId", "20202020-0000-4000-8000-00000000f00d"},
      {"webhookId", "20202020-0000-4000-8000-0000000000b1"},
      {"eventDate", format_iso_ms(now_ms())},
      {"record", change.record},
  };
  if (change.kind == ChangeKind::kUpdated) payload["updatedFields"] = change.updated_fields;
  return payload;
}

WebhookSender::WebhookSender(std::string url, std::string secret) : url_(std::move(url)), secret_(std::move(secret)) {
  const std::string scheme = "http://";
  if (url_.rfind(scheme, 0) != 0) throw std::invalid_argument("webhook url must be http://host:port/path: " + url_);
  auto rest = url_.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  path_ = slash == std::string::npos ? "/" : rest.substr(slash);
  auto colon = authority.rfind(':');
  if (colon == std::string::npos) throw std::invalid_argument("webhook url needs a port: " + url_);
  host_ = authority.substr(0, colon);
  port_ = std::stoi(authority.substr(colon + 1));
}

Delivery WebhookSender::make(const nlohmann::json& payload, const SignOptions& options) const {
  Delivery d;
  d.body = payload.dump();
  d.timestamp = std::to_string(options.timestamp_ms.value_or(now_ms()));
  d.nonce = options.nonce.value_or(random_nonce());
  d.signature = webhook_signature(secret_, d.timestamp, d.body);
  return d;
}

Delivery WebhookSender::with_bad_signature(Delivery delivery) {
  char& c = delivery.signature[delivery.signature.size() / 2];
  c = c == '0' ? '1' : '0';
  return delivery;
}

int WebhookSender::post_raw(const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers) const {
  httplib::Client client(host_, port_);
  client.set_connection_timeout(5, 0);
  client.set_read_timeout(30, 0);
  httplib::Headers h;
  for (const auto& [name, value] : headers) h.emplace(name, value);
  auto res = client.Post(path_.c_str(), h, body, "application/json");
  return res ? res->status : -1;
}

int WebhookSender::post(const Delivery& d) const {
  return post_raw(d.body, {{"X-Twenty-Webhook-Timestamp", d.timestamp},
                           {"X-Twenty-Webhook-Nonce", d.nonce},
                           {"X-Twenty-Webhook-Signature", d.signature}});
}

}  // namespace leadsync::fakes::twenty
