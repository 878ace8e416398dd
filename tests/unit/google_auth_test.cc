// Service-account credentials (common/google_auth.h) against a local fake token endpoint that checks
// what Google's does: the form grant type, an RS256 JWT whose signature verifies with the account's
// public key, and its claims. Then caching, refresh before expiry, and errors without secrets.
#include "common/google_auth.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "tests/unit/local_server.h"

namespace leadsync::common {
namespace {

using namespace std::chrono_literals;

std::string base64url_decode(std::string_view in) {
  std::string b64(in);
  for (auto& c : b64) c = c == '-' ? '+' : c == '_' ? '/' : c;
  while (b64.size() % 4) b64 += '=';
  std::string out(b64.size(), '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
  if (n < 0) return "";
  out.resize(static_cast<size_t>(n) - (in.size() % 4 == 2 ? 2 : in.size() % 4 == 3 ? 1 : 0));
  return out;
}

// A throw-away RSA key pair: the PEM private key for the key file, the public key for the endpoint.
struct TestKey {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> pkey{EVP_RSA_gen(2048), &EVP_PKEY_free};
  std::string pem() const {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), &BIO_free);
    PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<size_t>(len));
  }
  bool verifies(const std::string& input, const std::string& signature) const {
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    return EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, pkey.get()) == 1 &&
           EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()), signature.size(),
                            reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  }
};

// The fake token endpoint: answers a valid assertion with a fresh token, anything else with 400.
struct TokenEndpoint {
  const TestKey& key;
  LocalServer server;
  std::atomic<int> issued{0};
  std::string last_error;
  long long expires_in = 3600;
  std::string scope_seen;

  explicit TokenEndpoint(const TestKey& k) : key(k) {
    server.routes().Post("/token", [this](const httplib::Request& req, httplib::Response& res) {
      const auto grant = req.get_param_value("grant_type");
      const auto jwt = req.get_param_value("assertion");
      const auto dot1 = jwt.find('.');
      const auto dot2 = jwt.rfind('.');
      if (grant != "urn:ietf:params:oauth:grant-type:jwt-bearer" || dot1 == std::string::npos || dot1 == dot2 ||
          !key.verifies(jwt.substr(0, dot2), base64url_decode(jwt.substr(dot2 + 1)))) {
        last_error = "bad grant or signature";
        res.status = 400;
        res.set_content(R"({"error":"invalid_grant"})", "application/json");
        return;
      }
      const auto header = nlohmann::json::parse(base64url_decode(jwt.substr(0, dot1)));
      const auto claims = nlohmann::json::parse(base64url_decode(jwt.substr(dot1 + 1, dot2 - dot1 - 1)));
      if (header["alg"] != "RS256" || claims["iss"] != "sync@proj.iam.gserviceaccount.com" ||
          claims["aud"] != server.url("/token") || claims["exp"].get<long long>() - claims["iat"].get<long long>() != 3600) {
        last_error = "bad claims: " + claims.dump();
        res.status = 400;
        return;
      }
      scope_seen = claims["scope"];
      res.set_content(nlohmann::json{{"access_token", "ya29.token-" + std::to_string(++issued)},
                                     {"expires_in", expires_in},
                                     {"token_type", "Bearer"}}
                          .dump(),
                      "application/json");
    });
    server.start();
  }
};

ServiceAccountKey key_for(const TestKey& key, const TokenEndpoint& endpoint) {
  return parse_service_account_key(nlohmann::json{{"type", "service_account"},
                                                  {"client_email", "sync@proj.iam.gserviceaccount.com"},
                                                  {"private_key_id", "k1"},
                                                  {"private_key", key.pem()},
                                                  {"token_uri", endpoint.server.url("/token")}}
                                       .dump(),
                                   "test");
}

TEST(GoogleAuth, Base64urlHasNoPaddingAndTheUrlAlphabet) {
  EXPECT_EQ(base64url(""), "");
  EXPECT_EQ(base64url("f"), "Zg");
  EXPECT_EQ(base64url("fo"), "Zm8");
  EXPECT_EQ(base64url("foo"), "Zm9v");
  EXPECT_EQ(base64url("\xfb\xff\xbf"), "-_-_");
}

TEST(GoogleAuth, ExchangesASignedJwtForATokenAndCachesIt) {
  TestKey key;
  TokenEndpoint endpoint(key);
  GoogleTokenSource tokens(key_for(key, endpoint), kSheetsReadonlyScope);
  EXPECT_EQ(tokens.authorization(), "Bearer ya29.token-1") << endpoint.last_error;
  EXPECT_EQ(endpoint.scope_seen, kSheetsReadonlyScope);
  EXPECT_EQ(tokens.access_token(), "ya29.token-1");
  EXPECT_EQ(tokens.fetches(), 1) << "a valid cached token is reused";
}

TEST(GoogleAuth, RefreshesShortlyBeforeExpiryAndAfterInvalidate) {
  TestKey key;
  TokenEndpoint endpoint(key);
  endpoint.expires_in = 600;
  auto now = std::chrono::system_clock::now();
  GoogleTokenSource tokens(key_for(key, endpoint), kDatastoreScope, {}, [&] { return now; });
  EXPECT_EQ(tokens.access_token(), "ya29.token-1");
  now += 600s - GoogleTokenSource::kRefreshMargin - 1s;
  EXPECT_EQ(tokens.access_token(), "ya29.token-1");
  now += 2s;  // inside the refresh margin
  EXPECT_EQ(tokens.access_token(), "ya29.token-2");
  tokens.invalidate();
  EXPECT_EQ(tokens.access_token(), "ya29.token-3");
  EXPECT_EQ(endpoint.issued.load(), 3);
}

TEST(GoogleAuth, ARejectedAssertionFailsWithTheStatusAndNoSecret) {
  TestKey key;
  TestKey other;
  TokenEndpoint endpoint(key);
  auto wrong = key_for(other, endpoint);  // signed with a key the endpoint does not know
  GoogleTokenSource tokens(wrong, kSheetsReadonlyScope);
  try {
    tokens.access_token();
    ADD_FAILURE() << "a wrongly signed assertion was accepted";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.status(), 400);
    const std::string what = e.what();
    EXPECT_NE(what.find("/token"), std::string::npos) << what;
    EXPECT_EQ(what.find("PRIVATE KEY"), std::string::npos) << what;
    EXPECT_EQ(what.find("assertion="), std::string::npos) << what;
  }
}

TEST(GoogleAuth, KeyFileErrorsNameTheFileAndFieldNotTheKey) {
  const auto path = (std::filesystem::temp_directory_path() / ("sa_" + std::to_string(getpid()) + ".json")).string();
  {
    std::ofstream(path) << R"({"type":"service_account","private_key":"-----BEGIN PRIVATE KEY-----\nsecretbytes"})";
  }
  try {
    load_service_account_key(path);
    ADD_FAILURE() << "a key file without client_email was accepted";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("client_email"), std::string::npos) << what;
    EXPECT_EQ(what.find("secretbytes"), std::string::npos) << what;
  }
  std::filesystem::remove(path);
  EXPECT_THROW(load_service_account_key(path), std::runtime_error);
  ServiceAccountKey bad;
  bad.client_email = "x@y";
  bad.private_key_pem = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";
  EXPECT_THROW(make_jwt_assertion(bad, kSheetsReadonlyScope, std::chrono::system_clock::now()), std::runtime_error);
}

}  // namespace
}  // namespace leadsync::common
