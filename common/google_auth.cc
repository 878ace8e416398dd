#include "common/google_auth.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

namespace leadsync::common {
namespace {

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};

std::string rs256(const std::string& pem, std::string_view data) {
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw std::runtime_error("OpenSSL could not allocate a buffer for the private key");
  std::unique_ptr<EVP_PKEY, PkeyDeleter> pkey(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!pkey || EVP_PKEY_get_base_id(pkey.get()) != EVP_PKEY_RSA) {
    throw std::runtime_error("the service account's private_key is not a PEM RSA private key");
  }
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    throw std::runtime_error("OpenSSL could not sign with the service account's key");
  }
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(data.data()), data.size()) != 1) {
    throw std::runtime_error("OpenSSL could not sign with the service account's key");
  }
  sig.resize(len);
  return sig;
}

}  // namespace

std::string base64url(std::string_view bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
    out += table[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
  } else if (i + 2 == bytes.size()) {
    const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8);
    out += table[(v >> 18) & 63];
    out += table[(v >> 12) & 63];
    out += table[(v >> 6) & 63];
  }
  return out;
}

ServiceAccountKey parse_service_account_key(const std::string& json, const std::string& where) {
  const auto doc = nlohmann::json::parse(json, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    throw std::runtime_error("service account key " + where + ": not a JSON object");
  }
  auto field = [&](const char* name, bool required) -> std::string {
    const auto it = doc.find(name);
    if (it == doc.end() || !it->is_string() || it->get<std::string>().empty()) {
      if (required) throw std::runtime_error("service account key " + where + ": no string field '" + name + "'");
      return "";
    }
    return it->get<std::string>();
  };
  if (const auto type = field("type", false); !type.empty() && type != "service_account") {
    throw std::runtime_error("service account key " + where + ": type is '" + type +
                             "', expected 'service_account' (a key file from IAM > Service accounts > Keys)");
  }
  ServiceAccountKey key;
  key.client_email = field("client_email", true);
  key.private_key_pem = field("private_key", true);
  key.private_key_id = field("private_key_id", false);
  if (auto uri = field("token_uri", false); !uri.empty()) key.token_uri = std::move(uri);
  return key;
}

ServiceAccountKey load_service_account_key(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("service account key " + path + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  return parse_service_account_key(text.str(), path);
}

std::string make_jwt_assertion(const ServiceAccountKey& key, const std::string& scope,
                               std::chrono::system_clock::time_point now) {
  nlohmann::json header = {{"alg", "RS256"}, {"typ", "JWT"}};
  if (!key.private_key_id.empty()) header["kid"] = key.private_key_id;
  const auto iat = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  const nlohmann::json claims = {
      {"iss", key.client_email}, {"scope", scope}, {"aud", key.token_uri}, {"iat", iat}, {"exp", iat + 3600}};
  const auto signing_input = base64url(header.dump()) + "." + base64url(claims.dump());
  return signing_input + "." + base64url(rs256(key.private_key_pem, signing_input));
}

GoogleTokenSource::GoogleTokenSource(ServiceAccountKey key, std::string scope, HttpOptions http, Now now)
    : key_(std::move(key)), scope_(std::move(scope)), http_(std::move(http)), now_(std::move(now)) {
  if (!now_) now_ = [] { return std::chrono::system_clock::now(); };
}

std::string GoogleTokenSource::access_token() {
  std::lock_guard lock(mu_);
  const auto now = now_();
  if (!token_.empty() && now + kRefreshMargin < expires_) return token_;
  const auto assertion = make_jwt_assertion(key_, scope_, now);
  const auto response = http_.fetch(
      {HttpMethod::kPost,
       key_.token_uri,
       {{"Content-Type", "application/x-www-form-urlencoded"}},
       "grant_type=" + percent_encode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + assertion});
  ++fetches_;
  const auto doc = nlohmann::json::parse(response.body, nullptr, false);
  const auto where = "the token endpoint " + redact_http_url(key_.token_uri);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("access_token") || !doc["access_token"].is_string()) {
    throw std::runtime_error(where + " answered without an access_token");
  }
  long long expires_in = 3600;
  if (const auto it = doc.find("expires_in"); it != doc.end() && it->is_number_integer()) {
    expires_in = it->get<long long>();
  }
  token_ = doc["access_token"].get<std::string>();
  expires_ = now + std::chrono::seconds(expires_in);
  return token_;
}

std::string GoogleTokenSource::authorization() { return "Bearer " + access_token(); }

void GoogleTokenSource::invalidate() {
  std::lock_guard lock(mu_);
  token_.clear();
}

int GoogleTokenSource::fetches() const {
  std::lock_guard lock(mu_);
  return fetches_;
}

}  // namespace leadsync::common
