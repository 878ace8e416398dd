#include "producers/csv/csv_source.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>
#include <xxhash.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <stdexcept>
#include <thread>

namespace leadsync::producers {
namespace {

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct FileDeleter {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::string without_query(const std::string& url) { return url.substr(0, url.find('?')); }

std::string hash_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), &XXH3_freeState);
  XXH3_64bits_reset(state.get());
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    XXH3_64bits_update(state.get(), buf.data(), static_cast<size_t>(in.gcount()));
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(XXH3_64bits_digest(state.get())));
  return out;
}

}  // namespace

void http_download(const std::string& url, const std::string& path, int max_attempts) {
  std::mt19937_64 jitter(std::random_device{}());
  long delay_ms = 500;
  std::string last;
  for (int attempt = 1; attempt <= max_attempts; ++attempt) {
    std::unique_ptr<std::FILE, FileDeleter> file(std::fopen(path.c_str(), "wb"));
    if (!file) throw std::runtime_error("cannot write " + path);
    std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
    if (!curl) throw std::runtime_error("libcurl init failed");
    curl_easy_setopt(curl.get(), CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl.get(), CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl.get(), CURLOPT_WRITEDATA, file.get());
    curl_easy_setopt(curl.get(), CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl.get(), CURLOPT_TIMEOUT, 600L);
    curl_easy_setopt(curl.get(), CURLOPT_USERAGENT, "leadsync/" LEADSYNC_VERSION);
    const CURLcode rc = curl_easy_perform(curl.get());
    long status = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RESPONSE_CODE, &status);
    curl_off_t retry_after = 0;
    curl_easy_getinfo(curl.get(), CURLINFO_RETRY_AFTER, &retry_after);
    if (rc == CURLE_OK && status >= 200 && status < 300) return;
    last = rc != CURLE_OK ? std::string(curl_easy_strerror(rc)) : "HTTP " + std::to_string(status);
    const bool retryable = rc != CURLE_OK || status == 429 || status >= 500;
    if (!retryable || attempt == max_attempts) break;
    long wait = retry_after > 0 ? static_cast<long>(retry_after) * 1000 : delay_ms;
    wait += static_cast<long>(jitter() % static_cast<uint64_t>(delay_ms / 2 + 1));
    spdlog::warn("download {}: {} (attempt {}/{}), retrying in {} ms", without_query(url), last, attempt, max_attempts,
                 wait);
    std::this_thread::sleep_for(std::chrono::milliseconds(wait));
    delay_ms = std::min(delay_ms * 2, 30'000L);
  }
  throw std::runtime_error("download " + without_query(url) + " failed: " + last);
}

CsvSource::CsvSource(const common::SourceConfig& config, std::string work_dir)
    : config_(config), work_dir_(std::move(work_dir)) {}

CsvSource::~CsvSource() {
  if (!downloaded_.empty()) {
    std::error_code ec;
    std::filesystem::remove(downloaded_, ec);
  }
}

std::string CsvSource::local_path() {
  const bool remote = config_.url.starts_with("http://") || config_.url.starts_with("https://");
  if (!remote) return config_.url;
  std::filesystem::create_directories(work_dir_);
  downloaded_ = (std::filesystem::path(work_dir_) / (config_.name + ".download.csv")).string();
  http_download(config_.url, downloaded_);
  return downloaded_;
}

std::string CsvSource::open() {
  const auto path = local_path();
  std::error_code ec;
  size_ = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error("source " + config_.name + ": cannot read " + path + ": " + ec.message());
  const auto fingerprint = hash_file(path);
  in_.open(path, std::ios::binary);
  if (!in_) throw std::runtime_error("source " + config_.name + ": cannot open " + path);
  reader_ = std::make_unique<common::CsvReader>(in_);
  std::optional<common::CsvError> error;
  if (reader_->next(record_, error)) {
    if (error) throw std::runtime_error("source " + config_.name + ": malformed header: " + error->message);
    header_ = common::parse_csv_header(record_.cells);
  } else {
    header_ = common::parse_csv_header({});
  }
  return fingerprint;
}

std::vector<std::string> CsvSource::column_warnings() const {
  std::vector<std::string> out;
  for (const auto& issue : header_.issues) {
    out.push_back("column " + common::column_letter(issue.column) + ": " + issue.message);
  }
  return out;
}

bool CsvSource::next(RawRecord& out, std::optional<std::string>& error) {
  std::optional<common::CsvError> csv_error;
  if (!reader_->next(record_, csv_error)) {
    if (in_.bad()) throw std::runtime_error("source " + config_.name + ": read error");
    return false;
  }
  out.position = record_.line;
  out.cells.swap(record_.cells);
  if (csv_error) {
    error = "line " + std::to_string(csv_error->line) + ", column " + common::column_letter(csv_error->column) +
            ": " + csv_error->message;
  } else {
    error.reset();
  }
  return true;
}

double CsvSource::progress() const {
  if (!reader_ || size_ == 0) return 0;
  return std::min(1.0, static_cast<double>(reader_->bytes_read()) / static_cast<double>(size_));
}

}  // namespace leadsync::producers
