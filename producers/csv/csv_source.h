// kind: csv — a spreadsheet as CSV (sources.md "Spreadsheet as CSV"): a local file, file:// or an
// http(s):// URL (e.g. a Google Sheets export link), downloaded with the shared HTTP client into a
// private temporary file. Cells are checked as UTF-8 or converted from the declared encoding.
// Resumable: a checkpoint is the file's fingerprint and where the next record starts; a resume
// continues there when the file (downloaded again for a URL) has the same fingerprint.
#pragma once

#include <fstream>
#include <memory>
#include <string>

#include "common/csv.h"
#include "common/source_config.h"
#include "producers/header_source.h"
#include "producers/temp_file.h"

namespace leadsync::producers {

class CsvSource : public HeaderRowSource {
 public:
  // `work_dir` holds the private directory of a remote sheet's download during a run.
  CsvSource(const common::SourceConfig& config, const common::CsvSettings& settings, std::string work_dir);
  ~CsvSource() override;

  std::string open() override;
  bool next(SourceRecord& out, std::optional<std::string>& error) override;
  double progress() const override;
  std::optional<Checkpoint> checkpoint() const override;
  bool resume(const Checkpoint& from) override;

 private:
  std::string local_path();  // downloads a remote sheet first (once per run)
  // Measures and fingerprints the file at `path` (size_, fingerprint_); the name shown in errors.
  std::string inspect(const std::string& path);
  void read_header();
  // Checks or converts the record's cells to UTF-8; false with `error` set for a cell that is not
  // valid in the declared encoding.
  bool decode(std::vector<std::string>& cells, std::size_t line, std::optional<std::string>& error);

  common::SourceConfig config_;
  common::CsvSettings settings_;
  std::string work_dir_;
  std::unique_ptr<PrivateTempFile> download_;
  std::uintmax_t size_ = 0;
  std::string fingerprint_;
  std::ifstream in_;
  std::unique_ptr<common::CsvReader> reader_;
  common::CsvRecord record_;
  std::string scratch_;
};

}  // namespace leadsync::producers
