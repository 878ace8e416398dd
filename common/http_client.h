// The one HTTP client of every network source (sources.md; issue 8 "HTTP behaviour shared by every
// network adapter"): libcurl, GET and POST with headers and a body, the response in memory or
// streamed to a file. Bounded in every dimension a remote server controls: connect and per-attempt
// timeouts, a total deadline over all attempts and waits, a redirect limit (never from https to
// http), a maximum body size. 429, 5xx and transport errors are retried with exponential backoff and
// full jitter, honouring Retry-After. A body shorter than its Content-Length fails. A per-source
// request rate limit spaces every attempt (retries included) evenly, shared by copies of a client.
//
// Secrets: request header values are never logged nor put in errors (only header names could be),
// and every URL in a log line or error passes through redact_http_url().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace leadsync::common {

enum class HttpMethod { kGet, kPost, kPatch, kDelete };

struct HttpOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds attempt_timeout{300'000};  // one request, body included
  // The whole call: every attempt and every wait between them. Keep it well under the process's
  // health stall limit, so that a hung server fails the run instead of the liveness probe.
  std::chrono::milliseconds deadline{600'000};
  int max_attempts = 5;
  std::chrono::milliseconds backoff_base{500};   // the first retry waits up to this (full jitter)
  std::chrono::milliseconds backoff_max{30'000};  // cap of the exponential backoff
  int max_redirects = 5;
  std::uint64_t max_body_bytes = std::uint64_t{1} << 30;
  std::string ca_file;  // an extra trust anchor (a private CA, tests); TLS verification stays on
  // At most this many requests per second (attempts, retries included), evenly spaced; 0: no limit.
  // The sources' `http: {rate_limit: 60/min}`: stay under an API's quota instead of bouncing off it.
  double max_requests_per_second = 0;
};

// Percent-encodes everything but RFC 3986's unreserved characters and those in `keep` (a URL path
// segment, a form value).
std::string percent_encode(std::string_view text, std::string_view keep = "");

// Parses a rate like "60/min", "5/s" or "1000/h" into requests per second; nullopt if malformed.
std::optional<double> parse_request_rate(std::string_view text);

struct HttpRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value (values are treated as secrets)
  std::string body;                                          // POST and PATCH
};

struct HttpResponse {
  long status = 0;
  std::string body;  // empty for download()
  std::uint64_t body_bytes = 0;
  std::string content_type;
};

// Why a call failed; kStatus and kTransport are what remained after the retries.
enum class HttpFailure { kStatus, kTransport, kRedirect, kTooLarge, kTruncated, kDeadline, kLocal };

class HttpError : public std::runtime_error {
 public:
  HttpError(HttpFailure failure, long status, const std::string& message)
      : std::runtime_error(message), failure_(failure), status_(status) {}
  HttpFailure failure() const noexcept { return failure_; }
  long status() const noexcept { return status_; }  // the last HTTP status, 0 when none

 private:
  HttpFailure failure_;
  long status_;
};

// Waits between attempts. Tests pass one that records the waits instead of sleeping.
using HttpSleep = std::function<void(std::chrono::milliseconds)>;

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options = {}, HttpSleep sleep = nullptr);

  // Sends the request; the 2xx response's body in memory. Throws HttpError otherwise.
  HttpResponse fetch(const HttpRequest& request);
  // Sends the request and streams a 2xx body into `path` (rewritten on each attempt), flushed and
  // closed before returning; a write or close error fails the call. Throws HttpError otherwise.
  HttpResponse download(const HttpRequest& request, const std::string& path);

  const HttpOptions& options() const noexcept { return options_; }

 private:
  HttpResponse send(const HttpRequest& request, const std::string* path);

  // Waits until the rate limit lets the next attempt go; false if that would pass `deadline`.
  bool pace(std::chrono::steady_clock::time_point deadline);

  HttpOptions options_;
  HttpSleep sleep_;
  struct Pacer;
  std::shared_ptr<Pacer> pacer_;  // shared by copies: one limit per source
};

// The URL as it may appear in logs, errors and sync_runs: common::redact(), and then user info, every
// query value and the fragment replaced by ***, and path segments that look like keys or tokens (20+ letters, digits, - or _,
// with both letters and digits, e.g. a Sheets document key) replaced by ***.
std::string redact_http_url(std::string_view url);

}  // namespace leadsync::common
