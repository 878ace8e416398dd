#include "common/http_client.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <random>
#include <thread>

#include "common/redact.h"

namespace leadsync::common {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
struct FileDeleter {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using CurlHandle = std::unique_ptr<CURL, CurlDeleter>;
using HeaderList = std::unique_ptr<curl_slist, SlistDeleter>;

void global_init() {
  static std::once_flag once;  // curl_global_init is not thread-safe; curl_easy_init would call it lazily
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Where the body goes, and how much of it arrived. The limit is checked here as well as through
// CURLOPT_MAXFILESIZE, which only sees a declared Content-Length (not a chunked body).
struct Sink {
  std::string* memory = nullptr;
  std::FILE* file = nullptr;
  std::uint64_t bytes = 0;
  std::uint64_t limit = 0;
  bool too_large = false;
  bool write_failed = false;
};

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* sink = static_cast<Sink*>(user);
  const size_t n = size * count;
  if (sink->bytes + n > sink->limit) {
    sink->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  if (sink->file) {
    if (std::fwrite(data, 1, n, sink->file) != n) {
      sink->write_failed = true;
      return 0;
    }
  } else {
    sink->memory->append(data, n);
  }
  sink->bytes += n;
  return n;
}

// Transport errors worth another attempt: the network or the server hiccuped. Everything else
// (a refused redirect, a bad URL, a certificate that does not verify) fails at once.
bool retryable(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

const char* method_name(HttpMethod m) {
  switch (m) {
    case HttpMethod::kPost:
      return "POST";
    case HttpMethod::kPatch:
      return "PATCH";
    case HttpMethod::kDelete:
      return "DELETE";
    case HttpMethod::kGet:
      break;
  }
  return "GET";
}

bool secret_looking(std::string_view segment) {
  if (segment.size() < 20) return false;
  bool letter = false, digit = false;
  for (const char c : segment) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalpha(u)) {
      letter = true;
    } else if (std::isdigit(u)) {
      digit = true;
    } else if (c != '-' && c != '_') {
      return false;
    }
  }
  return letter && digit;
}

}  // namespace

std::string percent_encode(std::string_view text, std::string_view keep) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || keep.find(c) != std::string_view::npos) {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

std::optional<double> parse_request_rate(std::string_view text) {
  const auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0) return std::nullopt;
  const std::string count(text.substr(0, slash));
  char* end = nullptr;
  const double n = std::strtod(count.c_str(), &end);
  if (*end != '\0' || !(n > 0) || n > 1e6) return std::nullopt;
  const auto unit = text.substr(slash + 1);
  if (unit == "s") return n;
  if (unit == "min") return n / 60.0;
  if (unit == "h") return n / 3600.0;
  return std::nullopt;
}

// The next moment an attempt may start; each attempt pushes it on by 1/rate.
struct HttpClient::Pacer {
  std::mutex mu;
  Clock::time_point next{};
};

bool HttpClient::pace(Clock::time_point deadline) {
  if (options_.max_requests_per_second <= 0) return true;
  const auto spacing = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / options_.max_requests_per_second));
  Clock::time_point start;
  {
    std::lock_guard lock(pacer_->mu);
    start = std::max(Clock::now(), pacer_->next);
    if (start >= deadline) return false;
    pacer_->next = start + spacing;
  }
  const auto wait = std::chrono::ceil<milliseconds>(start - Clock::now());
  if (wait.count() > 0) sleep_(wait);
  return true;
}

std::string redact_http_url(std::string_view raw) {
  // common::redact first (the one redaction of secrets in text); then, because a URL here is known
  // to be a URL, every query value and key-like path segment as well.
  const std::string redacted = redact(raw);
  const std::string_view url = redacted;
  std::string out;
  const auto scheme_end = url.find("://");
  std::size_t pos = 0;
  if (scheme_end != std::string_view::npos) {
    out.append(url.substr(0, scheme_end + 3));
    pos = scheme_end + 3;
    const auto authority_end = std::min(url.find_first_of("/?#", pos), url.size());
    const auto authority = url.substr(pos, authority_end - pos);
    const auto at = authority.rfind('@');
    if (at != std::string_view::npos) {
      out += "***@";
      out.append(authority.substr(at + 1));
    } else {
      out.append(authority);
    }
    pos = authority_end;
  }
  const auto path_end = std::min(url.find_first_of("?#", pos), url.size());
  for (std::size_t i = pos; i < path_end;) {
    const auto slash = std::min(url.find('/', i), path_end);
    const auto segment = url.substr(i, slash - i);
    out += secret_looking(segment) ? std::string_view("***") : segment;
    if (slash < path_end) out += '/';
    i = slash + 1;
  }
  if (path_end < url.size() && url[path_end] == '?') {
    const auto query_end = std::min(url.find('#', path_end), url.size());
    out += '?';
    const auto query = url.substr(path_end + 1, query_end - path_end - 1);
    for (std::size_t i = 0; i <= query.size();) {
      const auto amp = std::min(query.find('&', i), query.size());
      const auto pair = query.substr(i, amp - i);
      const auto eq = pair.find('=');
      if (i > 0) out += '&';
      out.append(pair.substr(0, eq));
      if (eq != std::string_view::npos) out += "=***";
      i = amp + 1;
    }
  }
  if (url.find('#', path_end) != std::string_view::npos) out += "#***";
  return out;
}

HttpClient::HttpClient(HttpOptions options, HttpSleep sleep)
    : options_(std::move(options)), sleep_(std::move(sleep)), pacer_(std::make_shared<Pacer>()) {
  if (!sleep_) sleep_ = [](milliseconds d) { std::this_thread::sleep_for(d); };
  global_init();
}

HttpResponse HttpClient::fetch(const HttpRequest& request) { return send(request, nullptr); }

HttpResponse HttpClient::download(const HttpRequest& request, const std::string& path) {
  return send(request, &path);
}

HttpResponse HttpClient::send(const HttpRequest& request, const std::string* path) {
  const auto shown = std::string(method_name(request.method)) + " " + redact_http_url(request.url);
  const auto deadline = Clock::now() + options_.deadline;
  const bool https = request.url.starts_with("https://");
  if (!https && !request.url.starts_with("http://")) {
    throw HttpError(HttpFailure::kLocal, 0, shown + ": only http and https URLs are fetched");
  }
  HeaderList headers;
  for (const auto& [name, value] : request.headers) {
    const auto line = name + ": " + value;
    curl_slist* grown = curl_slist_append(headers.get(), line.c_str());
    if (!grown) throw HttpError(HttpFailure::kLocal, 0, shown + ": out of memory for headers");
    (void)headers.release();
    headers.reset(grown);
  }
  std::mt19937_64 random(std::random_device{}());
  std::string last;
  long status = 0;
  HttpFailure failure = HttpFailure::kTransport;

  for (int attempt = 1;; ++attempt) {
    if (!pace(deadline)) {
      throw HttpError(HttpFailure::kDeadline, status,
                      shown + ": the rate limit of " + std::to_string(options_.max_requests_per_second) +
                          " requests/s leaves no attempt within the deadline of " +
                          std::to_string(options_.deadline.count()) + " ms");
    }
    const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (remaining.count() <= 0) {
      throw HttpError(HttpFailure::kDeadline, status,
                      shown + ": no answer within the deadline of " + std::to_string(options_.deadline.count()) +
                          " ms" + (last.empty() ? "" : " (last: " + last + ")"));
    }
    HttpResponse response;
    Sink sink;
    sink.limit = options_.max_body_bytes;
    std::unique_ptr<std::FILE, FileDeleter> file;
    if (path) {
      file.reset(std::fopen(path->c_str(), "wb"));
      if (!file) throw HttpError(HttpFailure::kLocal, 0, shown + ": cannot write the download file");
      sink.file = file.get();
    } else {
      sink.memory = &response.body;
    }
    CurlHandle curl(curl_easy_init());
    if (!curl) throw HttpError(HttpFailure::kLocal, 0, shown + ": libcurl could not start a transfer");
    CURL* c = curl.get();
    curl_easy_setopt(c, CURLOPT_URL, request.url.c_str());
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    // A redirect may upgrade http to https, never downgrade an https request to http.
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, https ? "https" : "http,https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, options_.max_redirects > 0 ? 1L : 0L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, static_cast<long>(options_.max_redirects));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(std::min(options_.attempt_timeout, remaining).count()));
    curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(options_.max_body_bytes));
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
    if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_USERAGENT, "leadsync/" LEADSYNC_VERSION);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
    if (request.method == HttpMethod::kPatch || request.method == HttpMethod::kDelete) {
      curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method_name(request.method));
    }
    if (request.method == HttpMethod::kPost || request.method == HttpMethod::kPatch) {
      curl_easy_setopt(c, CURLOPT_POST, 1L);
      curl_easy_setopt(c, CURLOPT_POSTFIELDS, request.body.data());
      curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(request.body.size()));
    }
    const CURLcode rc = curl_easy_perform(c);
    status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t retry_after = 0;
    curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &retry_after);
    curl_off_t declared = -1;
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &declared);
    if (const char* type = nullptr; curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type) {
      response.content_type = type;
    }
    if (file) {
      const bool flushed = std::fflush(file.get()) == 0;
      const bool closed = std::fclose(file.release()) == 0;
      if (!flushed || !closed) sink.write_failed = true;
    }

    if (sink.write_failed) throw HttpError(HttpFailure::kLocal, status, shown + ": writing the download failed");
    if (sink.too_large || rc == CURLE_FILESIZE_EXCEEDED) {
      throw HttpError(HttpFailure::kTooLarge, status,
                      shown + ": the body exceeds the limit of " + std::to_string(options_.max_body_bytes) + " bytes");
    }
    if (rc == CURLE_TOO_MANY_REDIRECTS) {
      throw HttpError(HttpFailure::kRedirect, status,
                      shown + ": more than " + std::to_string(options_.max_redirects) + " redirects");
    }
    if (rc == CURLE_UNSUPPORTED_PROTOCOL && status >= 300 && status < 400) {
      throw HttpError(HttpFailure::kRedirect, status,
                      shown + ": refused a redirect to another protocol (an https request is never followed to http)");
    }
    bool again = false;
    if (rc != CURLE_OK) {
      failure = rc == CURLE_PARTIAL_FILE ? HttpFailure::kTruncated : HttpFailure::kTransport;
      last = rc == CURLE_PARTIAL_FILE ? "the body ended before its Content-Length (truncated)"
                                      : std::string(curl_easy_strerror(rc));
      again = retryable(rc);
    } else if (status >= 200 && status < 300) {
      if (declared >= 0 && static_cast<std::uint64_t>(declared) != sink.bytes) {
        failure = HttpFailure::kTruncated;
        last = "received " + std::to_string(sink.bytes) + " bytes of a declared " + std::to_string(declared);
        again = true;
      } else {
        response.status = status;
        response.body_bytes = sink.bytes;
        return response;
      }
    } else {
      failure = HttpFailure::kStatus;
      last = "HTTP " + std::to_string(status);
      again = status == 429 || status >= 500;
    }
    if (!again || attempt >= options_.max_attempts) {
      const auto tries = attempt > 1 ? " after " + std::to_string(attempt) + " attempts" : std::string();
      throw HttpError(failure, status, shown + ": " + last + tries);
    }
    // Full jitter (a uniform wait up to the exponential cap) unless the server said how long.
    const auto cap = std::min<long long>(options_.backoff_max.count(),
                                         options_.backoff_base.count() << std::min(attempt - 1, 20));
    milliseconds wait(static_cast<long long>(random() % static_cast<uint64_t>(std::max<long long>(cap, 1) + 1)));
    if (retry_after > 0) wait = std::chrono::seconds(retry_after);
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (wait >= left) {
      throw HttpError(HttpFailure::kDeadline, status,
                      shown + ": " + last + "; the next attempt (in " + std::to_string(wait.count()) +
                          " ms) would pass the deadline");
    }
    spdlog::warn("{}: {} (attempt {}/{}), retrying in {} ms", shown, last, attempt, options_.max_attempts,
                 wait.count());
    sleep_(wait);
  }
}

}  // namespace leadsync::common
