// The shared HTTP client against a real HTTP(S) server on loopback (cpp-httplib in the test
// process): retries, Retry-After, redirect limits and the https->http refusal, the body size limit,
// truncated bodies and redaction of secrets in errors.
#include "common/http_client.h"

#include <gtest/gtest.h>
#include <httplib.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <thread>

#include "tests/unit/local_server.h"

namespace leadsync::common {
namespace {

using namespace std::chrono_literals;

// A client that records its waits instead of sleeping, so retry tests take no wall time.
struct Recorded {
  std::vector<std::chrono::milliseconds> waits;
  HttpClient client(HttpOptions options = {}) {
    return HttpClient(std::move(options), [this](std::chrono::milliseconds d) { waits.push_back(d); });
  }
};

HttpError error_of(HttpClient& client, const std::string& url) {
  try {
    client.fetch({HttpMethod::kGet, url, {}, {}});
  } catch (const HttpError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << url;
  return HttpError(HttpFailure::kLocal, 0, "(none)");
}

TEST(HttpClient, GetsABodyAndPostsHeadersAndBody) {
  LocalServer server;
  server.routes().Get("/hello", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("hello", "text/plain");
  });
  server.routes().Post("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content(req.get_header_value("Authorization") + "|" + req.body, "application/json");
  });
  server.start();
  HttpClient client;
  const auto got = client.fetch({HttpMethod::kGet, server.url("/hello"), {}, {}});
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "hello");
  EXPECT_EQ(got.content_type, "text/plain");
  const auto posted =
      client.fetch({HttpMethod::kPost, server.url("/echo"), {{"Authorization", "Bearer t0k"}}, R"({"a":1})"});
  EXPECT_EQ(posted.body, R"(Bearer t0k|{"a":1})");
}

TEST(HttpClient, StreamsADownloadToAFile) {
  LocalServer server;
  const std::string body(300'000, 'x');
  server.routes().Get("/big", [&](const httplib::Request&, httplib::Response& res) { res.set_content(body, "text/csv"); });
  server.start();
  const auto path = (std::filesystem::temp_directory_path() / ("http_client_test_" + std::to_string(getpid()))).string();
  HttpClient client;
  const auto got = client.download({HttpMethod::kGet, server.url("/big"), {}, {}}, path);
  EXPECT_EQ(got.body_bytes, body.size());
  EXPECT_TRUE(got.body.empty());
  EXPECT_EQ(std::filesystem::file_size(path), body.size());
  std::filesystem::remove(path);
}

TEST(HttpClient, RetriesServerErrorsWithFullJitterUnderTheExponentialCap) {
  LocalServer server;
  std::atomic<int> calls{0};
  server.routes().Get("/flaky", [&](const httplib::Request&, httplib::Response& res) {
    if (++calls <= 3) {
      res.status = 503;
      return;
    }
    res.set_content("ok", "text/plain");
  });
  server.start();
  Recorded rec;
  HttpOptions options;
  options.backoff_base = 100ms;
  auto client = rec.client(options);
  EXPECT_EQ(client.fetch({HttpMethod::kGet, server.url("/flaky"), {}, {}}).body, "ok");
  EXPECT_EQ(calls.load(), 4);
  ASSERT_EQ(rec.waits.size(), 3u);
  for (std::size_t i = 0; i < rec.waits.size(); ++i) {
    EXPECT_LE(rec.waits[i], 100ms * (1 << i)) << "wait " << i;
  }
}

// The waits of a client whose first request is answered 429 with this Retry-After header.
std::vector<std::chrono::milliseconds> waits_after_429(const std::function<std::string()>& retry_after) {
  LocalServer server;
  std::atomic<int> calls{0};
  server.routes().Get("/quota", [&](const httplib::Request&, httplib::Response& res) {
    if (++calls == 1) {
      res.status = 429;
      res.set_header("Retry-After", retry_after());
      return;
    }
    res.set_content("ok", "text/plain");
  });
  server.start();
  Recorded rec;
  auto client = rec.client();
  EXPECT_EQ(client.fetch({HttpMethod::kGet, server.url("/quota"), {}, {}}).body, "ok");
  return rec.waits;
}

TEST(HttpClient, HonoursRetryAfterOn429) {
  const auto waits = waits_after_429([] { return std::string("7"); });
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_EQ(waits[0], 7s);
}

TEST(HttpClient, HonoursRetryAfterAsAnHttpDate) {
  const auto waits = waits_after_429([] {
    const auto at = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now() + 20s);
    char date[64];
    std::tm tm{};
    gmtime_r(&at, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    return std::string(date);
  });
  ASSERT_EQ(waits.size(), 1u);
  EXPECT_GE(waits[0], 18s);
  EXPECT_LE(waits[0], 21s);
}

TEST(HttpClient, RateLimitSpacesRequestsEvenlyAcrossCopiesOfAClient) {
  LocalServer server;
  std::vector<std::chrono::steady_clock::time_point> arrivals;
  std::mutex mu;
  server.routes().Get("/r", [&](const httplib::Request&, httplib::Response& res) {
    std::lock_guard lock(mu);
    arrivals.push_back(std::chrono::steady_clock::now());
    res.set_content("ok", "text/plain");
  });
  server.start();
  HttpOptions options;
  options.max_requests_per_second = *parse_request_rate("600/min");  // one every 100 ms
  HttpClient client(options);
  HttpClient copy = client;  // the same source's limit
  const auto first = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    client.fetch({HttpMethod::kGet, server.url("/r"), {}, {}});
    copy.fetch({HttpMethod::kGet, server.url("/r"), {}, {}});
  }
  ASSERT_EQ(arrivals.size(), 6u);
  // The sixth request cannot start before five spacings have passed (two independent limits would
  // let the six through in three). Arrival gaps themselves jitter with the server's scheduling.
  EXPECT_GE(arrivals.back() - first, 500ms);
  HttpClient unlimited;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < 6; ++i) unlimited.fetch({HttpMethod::kGet, server.url("/r"), {}, {}});
  EXPECT_LT(std::chrono::steady_clock::now() - started, 400ms) << "no limit configured, no pacing";
}

TEST(HttpClient, ARateLimitThatLeavesNoAttemptBeforeTheDeadlineFails) {
  LocalServer server;
  server.routes().Get("/r", [](const httplib::Request&, httplib::Response& res) { res.set_content("ok", "text/plain"); });
  server.start();
  HttpOptions options;
  options.max_requests_per_second = *parse_request_rate("1/h");
  options.deadline = 2s;
  Recorded rec;
  auto client = rec.client(options);
  client.fetch({HttpMethod::kGet, server.url("/r"), {}, {}});
  const auto e = error_of(client, server.url("/r"));
  EXPECT_EQ(e.failure(), HttpFailure::kDeadline);
  EXPECT_NE(std::string(e.what()).find("rate limit"), std::string::npos) << e.what();
}

TEST(HttpClient, ParsesRequestRates) {
  EXPECT_DOUBLE_EQ(*parse_request_rate("5/s"), 5.0);
  EXPECT_DOUBLE_EQ(*parse_request_rate("60/min"), 1.0);
  EXPECT_DOUBLE_EQ(*parse_request_rate("3600/h"), 1.0);
  for (const auto* bad : {"", "60", "/min", "0/s", "-1/s", "x/s", "5/day", "5/ s"}) {
    EXPECT_FALSE(parse_request_rate(bad)) << bad;
  }
}

TEST(HttpClient, SendsPatchAndDeleteWithTheirMethod) {
  LocalServer server;
  server.routes().Patch("/p", [](const httplib::Request& req, httplib::Response& res) {
    res.set_content("patched " + req.body, "text/plain");
  });
  server.routes().Delete("/p", [](const httplib::Request&, httplib::Response& res) { res.set_content("deleted", "text/plain"); });
  server.start();
  HttpClient client;
  EXPECT_EQ(client.fetch({HttpMethod::kPatch, server.url("/p"), {}, "x=1"}).body, "patched x=1");
  EXPECT_EQ(client.fetch({HttpMethod::kDelete, server.url("/p"), {}, {}}).body, "deleted");
}

TEST(HttpClient, GivesUpAfterMaxAttemptsNamingTheStatus) {
  LocalServer server;
  std::atomic<int> calls{0};
  server.routes().Get("/down", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 500;
  });
  server.start();
  Recorded rec;
  HttpOptions options;
  options.max_attempts = 3;
  auto client = rec.client(options);
  const auto e = error_of(client, server.url("/down"));
  EXPECT_EQ(e.failure(), HttpFailure::kStatus);
  EXPECT_EQ(e.status(), 500);
  EXPECT_NE(std::string(e.what()).find("HTTP 500 after 3 attempts"), std::string::npos) << e.what();
  EXPECT_EQ(calls.load(), 3);
}

TEST(HttpClient, DoesNotRetryAClientError) {
  LocalServer server;
  std::atomic<int> calls{0};
  server.routes().Get("/missing", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.status = 404;
  });
  server.start();
  Recorded rec;
  auto client = rec.client();
  EXPECT_EQ(error_of(client, server.url("/missing")).status(), 404);
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(rec.waits.empty());
}

TEST(HttpClient, RetryAfterBeyondTheDeadlineFailsAtOnce) {
  LocalServer server;
  server.routes().Get("/later", [](const httplib::Request&, httplib::Response& res) {
    res.status = 429;
    res.set_header("Retry-After", "3600");
  });
  server.start();
  Recorded rec;
  HttpOptions options;
  options.deadline = 5s;
  auto client = rec.client(options);
  const auto e = error_of(client, server.url("/later"));
  EXPECT_EQ(e.failure(), HttpFailure::kDeadline);
  EXPECT_TRUE(rec.waits.empty());
}

TEST(HttpClient, AHungServerFailsAtTheTotalDeadline) {
  LocalServer server;
  server.routes().Get("/hang", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(1500ms);
    res.set_content("late", "text/plain");
  });
  server.start();
  HttpOptions options;
  options.deadline = 400ms;
  HttpClient client(options, [](std::chrono::milliseconds) {});
  const auto started = std::chrono::steady_clock::now();
  const auto e = error_of(client, server.url("/hang"));
  EXPECT_EQ(e.failure(), HttpFailure::kDeadline) << e.what();
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1400ms);
}

TEST(HttpClient, LimitsRedirects) {
  LocalServer server;
  server.routes().Get("/loop", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect(server.url("/loop"));
  });
  server.routes().Get("/once", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect(server.url("/target"));
  });
  server.routes().Get("/target", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("here", "text/plain");
  });
  server.start();
  HttpOptions options;
  options.max_redirects = 3;
  HttpClient client(options);
  EXPECT_EQ(client.fetch({HttpMethod::kGet, server.url("/once"), {}, {}}).body, "here");
  const auto e = error_of(client, server.url("/loop"));
  EXPECT_EQ(e.failure(), HttpFailure::kRedirect);
  EXPECT_NE(std::string(e.what()).find("more than 3 redirects"), std::string::npos) << e.what();
}

// A self-signed certificate for 127.0.0.1, its key, and the certificate as a PEM file to trust.
struct TestCertificate {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key{EVP_RSA_gen(2048), &EVP_PKEY_free};
  std::unique_ptr<X509, decltype(&X509_free)> cert{X509_new(), &X509_free};
  std::string pem_path;

  TestCertificate() {
    X509* x = cert.get();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), -60);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_set_pubkey(x, key.get());
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("127.0.0.1"), -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
    for (const auto& [nid, value] : {std::pair{NID_subject_alt_name, "IP:127.0.0.1"},
                                     std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(x, key.get(), EVP_sha256());
    pem_path = (std::filesystem::temp_directory_path() / ("http_client_ca_" + std::to_string(getpid()) + ".pem"))
                   .string();
    std::unique_ptr<std::FILE, decltype(&std::fclose)> f(std::fopen(pem_path.c_str(), "w"), &std::fclose);
    PEM_write_X509(f.get(), x);
  }
  ~TestCertificate() { std::filesystem::remove(pem_path); }
};

TEST(HttpClient, NeverFollowsAnHttpsRequestToHttp) {
  TestCertificate tls;
  LocalServer plain;
  plain.routes().Get("/target", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("plain", "text/plain");
  });
  plain.start();
  LocalServer secure(std::make_unique<httplib::SSLServer>(tls.cert.get(), tls.key.get()));
  secure.routes().Get("/ok", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("secure", "text/plain");
  });
  secure.routes().Get("/downgrade", [&](const httplib::Request&, httplib::Response& res) {
    res.set_redirect(plain.url("/target"));
  });
  secure.start();
  HttpOptions options;
  options.ca_file = tls.pem_path;
  HttpClient client(options);
  // The https server is reachable and trusted: the refusal below is the downgrade's, not TLS's.
  EXPECT_EQ(client.fetch({HttpMethod::kGet, secure.url("/ok", "https"), {}, {}}).body, "secure");
  const auto e = error_of(client, secure.url("/downgrade", "https"));
  EXPECT_EQ(e.failure(), HttpFailure::kRedirect) << e.what();
  EXPECT_NE(std::string(e.what()).find("never followed to http"), std::string::npos) << e.what();
  // Without the trust anchor the certificate does not verify: TLS verification is on.
  HttpClient untrusting;
  EXPECT_EQ(error_of(untrusting, secure.url("/ok", "https")).failure(), HttpFailure::kTransport);
}

TEST(HttpClient, RefusesABodyOverTheSizeLimitDeclaredOrStreamed) {
  LocalServer server;
  server.routes().Get("/declared", [](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(5000, 'a'), "text/plain");
  });
  server.routes().Get("/chunked", [](const httplib::Request&, httplib::Response& res) {
    res.set_chunked_content_provider("text/plain", [](size_t offset, httplib::DataSink& sink) {
      if (offset >= 50'000) {
        sink.done();
        return true;
      }
      const std::string chunk(1000, 'b');
      sink.write(chunk.data(), chunk.size());
      return true;
    });
  });
  server.start();
  HttpOptions options;
  options.max_body_bytes = 4096;
  HttpClient client(options);
  for (const auto* path : {"/declared", "/chunked"}) {
    const auto e = error_of(client, server.url(path));
    EXPECT_EQ(e.failure(), HttpFailure::kTooLarge) << path << ": " << e.what();
    EXPECT_NE(std::string(e.what()).find("4096 bytes"), std::string::npos) << e.what();
  }
}

TEST(HttpClient, ABodyShorterThanItsContentLengthFails) {
  LocalServer server;
  std::atomic<int> calls{0};
  server.routes().Get("/cut", [&](const httplib::Request&, httplib::Response& res) {
    ++calls;
    res.set_content_provider(1000, "text/csv", [](size_t, size_t, httplib::DataSink& sink) {
      const std::string half(500, 'c');
      sink.write(half.data(), half.size());
      return false;  // the connection closes with 500 of the 1000 declared bytes sent
    });
  });
  server.start();
  HttpOptions options;
  options.max_attempts = 2;
  HttpClient client(options, [](std::chrono::milliseconds) {});
  const auto path = (std::filesystem::temp_directory_path() / ("http_cut_" + std::to_string(getpid()))).string();
  try {
    client.download({HttpMethod::kGet, server.url("/cut"), {}, {}}, path);
    ADD_FAILURE() << "a truncated body was accepted";
  } catch (const HttpError& e) {
    EXPECT_EQ(e.failure(), HttpFailure::kTruncated) << e.what();
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos) << e.what();
  }
  EXPECT_EQ(calls.load(), 2) << "a truncated body is retried like a broken connection";
  std::filesystem::remove(path);
}

TEST(HttpClient, R18_ErrorsAndLogsNeverCarryUserInfoQueryTokensOrHeaderValues) {
  LocalServer server;
  server.routes().Get(R"(/spreadsheets/d/([^/]+)/export)", [](const httplib::Request&, httplib::Response& res) {
    res.status = 403;
  });
  server.start();
  HttpClient client;
  const auto url = "http://ann:hunter2@127.0.0.1:" + std::to_string(server.port()) +
                   "/spreadsheets/d/1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms/export?gid=0&access_token=ya29secret";
  try {
    client.fetch({HttpMethod::kGet, url, {{"Authorization", "Bearer sk-live-123"}}, {}});
    ADD_FAILURE() << "no error";
  } catch (const HttpError& e) {
    const std::string what = e.what();
    EXPECT_EQ(e.status(), 403);
    EXPECT_NE(what.find("HTTP 403"), std::string::npos) << what;
    for (const auto* secret : {"hunter2", "ann:", "ya29secret", "1BxiMVs0XRA5nFMdKvBdBZjgmUUqptlbs74OgvE2upms",
                               "sk-live-123"}) {
      EXPECT_EQ(what.find(secret), std::string::npos) << secret << " in: " << what;
    }
    EXPECT_NE(what.find("/spreadsheets/d/***/export?gid=***&access_token=***"), std::string::npos) << what;
  }
}

TEST(HttpClient, RedactsUrlsForLogs) {
  EXPECT_EQ(redact_http_url("https://u:p@host.example/a/b?x=1&y#frag"), "https://***@host.example/a/b?x=***&y#***");
  EXPECT_EQ(redact_http_url("http://127.0.0.1:8080/leads.csv"), "http://127.0.0.1:8080/leads.csv");
  EXPECT_EQ(redact_http_url("https://h/v4/spreadsheets/abcdefghij0123456789xyz/values/Sheet1"),
            "https://h/v4/spreadsheets/***/values/Sheet1");
  EXPECT_EQ(redact_http_url("https://h/rest/people"), "https://h/rest/people");
}

}  // namespace
}  // namespace leadsync::common
