// Spreadsheet as CSV: a local file, file:// or http(s):// URL (e.g. a Google Sheets export link).
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include "common/config.h"
#include "common/csv.h"
#include "producers/source.h"

namespace leadsync::producers {

class CsvSource : public SourceAdapter {
 public:
  // `work_dir` holds the downloaded copy of a remote sheet during a run.
  CsvSource(const common::SourceConfig& config, std::string work_dir);
  ~CsvSource() override;

  std::string open() override;
  const std::vector<std::string>& columns() const override { return header_.names; }
  std::vector<std::string> column_warnings() const override;
  bool is_duplicate_column(const std::string& name) const override { return header_.is_duplicate(name); }
  bool next(RawRecord& out, std::optional<std::string>& error) override;
  double progress() const override;

 private:
  std::string local_path();  // downloads a remote sheet first

  common::SourceConfig config_;
  std::string work_dir_;
  std::string downloaded_;  // temp file to remove, if any
  std::uintmax_t size_ = 0;
  std::ifstream in_;
  std::unique_ptr<common::CsvReader> reader_;
  common::CsvHeader header_;
  common::CsvRecord record_;
};

// Downloads `url` to `path`, retrying 429 and 5xx with exponential backoff and jitter and honouring
// Retry-After. Throws std::runtime_error naming the URL (without its query) and the last status.
void http_download(const std::string& url, const std::string& path, int max_attempts = 5);

}  // namespace leadsync::producers
