// The one HTTP client of every network source (sources.md; issue 8 "HTTP behaviour shared by every
// network adapter"): libcurl, GET and POST with headers and a body, the response in memory or
// streamed to a file. Bounded in every dimension a remote server controls: connect and per-attempt
// timeouts, a total deadline over all attempts and waits, a redirect limit (never from https to
// http), a maximum body size. 429, 5xx and transport errors are retried with exponential backoff and
// full jitter, honouring Retry-After. A body shorter than its Content-Length fails.
//
// Secrets: request header values are never logged nor put in errors (only header names could be),
// and every URL in a log line or error passes through redact_http_url().
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
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
};

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

  HttpOptions options_;
  HttpSleep sleep_;
};

// The URL as it may appear in logs, errors and sync_runs: common::redact(), and then user info, every
// query value and the fragment replaced by ***, and path segments that look like keys or tokens (20+ letters, digits, - or _,
// with both letters and digits, e.g. a Sheets document key) replaced by ***.
std::string redact_http_url(std::string_view url);

}  // namespace leadsync::common
