// libFuzzer target: the CSV reader on arbitrary bytes, read with two chunk sizes that must agree
// (records, errors, progress), and the text checks every cell then goes through.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string>

#include "common/csv.h"
#include "common/text_encoding.h"

namespace {

struct Result {
  std::vector<leadsync::common::CsvRecord> records;
  std::vector<std::optional<leadsync::common::CsvError>> errors;
  bool open_quote = false;
};

Result read(const std::string& text, std::size_t chunk) {
  std::istringstream in(text);
  leadsync::common::CsvReader reader(in, ',', chunk);
  Result r;
  leadsync::common::CsvRecord record;
  std::optional<leadsync::common::CsvError> error;
  while (reader.next(record, error)) {
    r.records.push_back(record);
    r.errors.push_back(error);
    if (reader.bytes_read() > text.size()) std::abort();
  }
  if (reader.bytes_read() != text.size()) std::abort();
  r.open_quote = reader.ended_in_open_quote();
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  const auto whole = read(text, leadsync::common::CsvReader::kDefaultChunkSize);
  const auto bytewise = read(text, 1);
  if (whole.records != bytewise.records || whole.errors != bytewise.errors || whole.open_quote != bytewise.open_quote) {
    std::abort();  // the chunk boundary changed what was read
  }
  std::string converted;
  for (const auto& record : whole.records) {
    for (const auto& cell : record.cells) {
      leadsync::common::to_utf8(cell, leadsync::common::TextEncoding::kCp1252, converted);
      if (converted.find('\0') == std::string::npos &&
          leadsync::common::invalid_text_at(converted) != std::string::npos) {
        std::abort();  // a conversion must always give valid UTF-8
      }
      const auto stored = leadsync::common::storable_text(cell, 64);
      if (leadsync::common::invalid_text_at(stored) != std::string::npos || stored.size() > 64) std::abort();
    }
  }
  return 0;
}
