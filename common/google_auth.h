// Google service-account credentials for the Google sources (Sheets, Firestore): the OAuth2 JWT
// bearer flow (RFC 7523; Google's "OAuth 2.0 for server to server applications"). A JWT naming the
// service account, the scope and the token endpoint is signed with the account's RSA key (RS256,
// OpenSSL) and exchanged at the key file's `token_uri` for an access token, which is cached and
// fetched again shortly before it expires.
//
// Secrets: the private key and the tokens never appear in logs or errors; errors name the key file
// and the (redacted) token endpoint only.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>
#include <string>

#include "common/http_client.h"

namespace leadsync::common {

// The fields of a service-account key file (the JSON downloaded from the cloud console) that the
// flow needs.
struct ServiceAccountKey {
  std::string client_email;
  std::string private_key_pem;  // "-----BEGIN PRIVATE KEY-----..."
  std::string private_key_id;   // the JWT's `kid`, may be empty
  std::string token_uri = "https://oauth2.googleapis.com/token";
};

// Reads and checks a key file. Throws std::runtime_error naming the file and the missing or wrong
// field (never the key itself).
ServiceAccountKey load_service_account_key(const std::string& path);
ServiceAccountKey parse_service_account_key(const std::string& json, const std::string& where);

// The signed assertion: base64url(header).base64url(claims).base64url(RS256 signature), with
// iss = client_email, scope, aud = token_uri, iat = now, exp = now + 1 h. Throws on a key OpenSSL
// cannot read as an RSA private key.
std::string make_jwt_assertion(const ServiceAccountKey& key, const std::string& scope,
                               std::chrono::system_clock::time_point now);

// Base64url without padding (RFC 4648 §5), as JWTs use it.
std::string base64url(std::string_view bytes);

// Scopes the sources ask for.
inline constexpr const char* kSheetsReadonlyScope = "https://www.googleapis.com/auth/spreadsheets.readonly";
inline constexpr const char* kDatastoreScope = "https://www.googleapis.com/auth/datastore";

// Hands out access tokens of one service account for one scope; thread-safe. The token is cached
// until `refresh_margin` before its expiry (expires_in of the token response), then fetched again.
class GoogleTokenSource {
 public:
  using Now = std::function<std::chrono::system_clock::time_point()>;

  GoogleTokenSource(ServiceAccountKey key, std::string scope, HttpOptions http = {}, Now now = nullptr);

  // A valid access token; fetches one when none is cached or the cached one is about to expire.
  // Throws HttpError (the endpoint's status, redacted URL) or std::runtime_error (a malformed answer).
  std::string access_token();
  // "Bearer <token>", for an Authorization header.
  std::string authorization();
  // Drops the cached token (after a 401 from the API, say), so the next call fetches a new one.
  void invalidate();
  // How many tokens were fetched from the endpoint (tests, metrics).
  int fetches() const;

  static constexpr std::chrono::seconds kRefreshMargin{60};

 private:
  ServiceAccountKey key_;
  std::string scope_;
  HttpClient http_;
  Now now_;
  mutable std::mutex mu_;
  std::string token_;
  std::chrono::system_clock::time_point expires_{};
  int fetches_ = 0;
};

}  // namespace leadsync::common
