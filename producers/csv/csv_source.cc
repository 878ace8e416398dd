#include "producers/csv/csv_source.h"

#include <xxhash.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "common/http_client.h"
#include "common/text_encoding.h"

namespace leadsync::producers {
namespace {

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
  if (in.bad()) throw std::runtime_error("read error on " + path);
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(XXH3_64bits_digest(state.get())));
  return out;
}

bool remote(const std::string& url) { return url.starts_with("http://") || url.starts_with("https://"); }

}  // namespace

CsvSource::CsvSource(const common::SourceConfig& config, const common::CsvSettings& settings, std::string work_dir)
    : config_(config), settings_(settings), work_dir_(std::move(work_dir)) {}

CsvSource::~CsvSource() = default;

std::string CsvSource::local_path() {
  if (!remote(config_.url)) return config_.url;
  if (download_) return download_->path();  // a resume that did not fit is followed by open()
  download_ = std::make_unique<PrivateTempFile>(work_dir_, "download");
  common::HttpClient client(config_.http);
  client.download({common::HttpMethod::kGet, config_.url, {}, {}}, download_->path());
  return download_->path();
}

std::string CsvSource::inspect(const std::string& path) {
  const auto shown = remote(config_.url) ? common::redact_http_url(config_.url) : path;
  std::error_code ec;
  size_ = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error("source " + config_.name + ": cannot read " + shown + ": " + ec.message());
  fingerprint_ = hash_file(path);
  in_.close();
  in_.clear();
  in_.open(path, std::ios::binary);
  if (!in_) throw std::runtime_error("source " + config_.name + ": cannot open " + shown);
  return shown;
}

void CsvSource::read_header() {
  reader_ = std::make_unique<common::CsvReader>(in_);
  std::optional<common::CsvError> error;
  if (reader_->next(record_, error)) {
    if (error) throw std::runtime_error("source " + config_.name + ": malformed header: " + error->message);
    std::optional<std::string> bad;
    if (!decode(record_.cells, record_.line, bad)) {
      throw std::runtime_error("source " + config_.name + ": header: " + *bad);
    }
    set_header(record_.cells);
  } else {
    set_header({});
  }
}

std::string CsvSource::open() {
  inspect(local_path());
  read_header();
  return fingerprint_;
}

std::optional<Checkpoint> CsvSource::checkpoint() const {
  if (!reader_) return std::nullopt;
  const auto p = reader_->position();
  return Checkpoint{"csv1:" + fingerprint_ + ":" + std::to_string(p.offset) + ":" + std::to_string(p.line) + ":" +
                    (p.after_cr ? "1" : "0")};
}

bool CsvSource::resume(const Checkpoint& from) {
  char fingerprint[17] = {};
  unsigned long long offset = 0, line = 0;
  int after_cr = 0;
  if (std::sscanf(from.value.c_str(), "csv1:%16[0-9a-f]:%llu:%llu:%d", fingerprint, &offset, &line, &after_cr) != 4) {
    return false;
  }
  inspect(local_path());
  // Another file than the one the checkpoint was taken in: its offsets mean nothing there.
  if (fingerprint_ != fingerprint || offset > size_ || line == 0) return false;
  read_header();
  in_.clear();
  in_.seekg(static_cast<std::streamoff>(offset));
  if (!in_) throw std::runtime_error("source " + config_.name + ": cannot seek to byte " + std::to_string(offset));
  reader_ = std::make_unique<common::CsvReader>(in_);
  reader_->continue_from({static_cast<std::size_t>(offset), static_cast<std::size_t>(line), after_cr != 0});
  return true;
}

bool CsvSource::decode(std::vector<std::string>& cells, std::size_t line, std::optional<std::string>& error) {
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (settings_.encoding != common::TextEncoding::kUtf8) {
      common::to_utf8(cells[i], settings_.encoding, scratch_);
      cells[i].swap(scratch_);
    }
    if (const auto at = common::invalid_text_at(cells[i]); at != std::string::npos) {
      const bool nul = cells[i][at] == '\0';
      error = "line " + std::to_string(line) + ", column " + common::column_letter(i + 1) + ": " +
              (nul ? "a NUL byte" : "bytes that are not valid UTF-8") + " at byte " + std::to_string(at + 1) +
              " of the cell" +
              (nul ? std::string() : " (a file in another encoding needs csv: {encoding: cp1252} or latin1)");
      return false;
    }
  }
  return true;
}

bool CsvSource::next(SourceRecord& out, std::optional<std::string>& error) {
  std::optional<common::CsvError> csv_error;
  if (!reader_->next(record_, csv_error)) {
    if (in_.bad()) throw std::runtime_error("source " + config_.name + ": read error");
    return false;
  }
  if (reader_->ended_in_open_quote()) {
    // Everything from the opening quote to the end of the file is one cell: the records after it
    // were never read, and must not be mistaken for deletions.
    throw std::runtime_error("source " + config_.name + ": the file ends inside a quoted cell (" +
                             (csv_error ? csv_error->message : std::string("unterminated quote")) +
                             "); nothing was synced");
  }
  out.position = record_.line;
  out.kind = CellKind::kText;
  out.cells.swap(record_.cells);
  if (csv_error) {
    error = "line " + std::to_string(csv_error->line) + ", column " + common::column_letter(csv_error->column) +
            ": " + csv_error->message;
  } else {
    error.reset();
    decode(out.cells, out.position, error);
  }
  return true;
}

double CsvSource::progress() const {
  if (!reader_ || size_ == 0) return 0;
  return std::min(1.0, static_cast<double>(reader_->bytes_read()) / static_cast<double>(size_));
}

}  // namespace leadsync::producers
