// The header of a generated lead sheet as a source adapter: the Mapper resolves mapped columns
// against a snapshot's header, and the benchmark tools map generated rows (lead_header()) without
// reading a file. It yields no records.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "bench/gen/lead_data.h"
#include "producers/source.h"

namespace leadsync::bench {

class GeneratedHeader : public producers::SourceAdapter {
 public:
  GeneratedHeader() : columns_(lead_header()) {}
  std::string open() override { return {}; }
  const std::vector<std::string>& columns() const override { return columns_; }
  std::vector<std::string> column_warnings() const override { return {}; }
  bool is_duplicate_column(const std::string&) const override { return false; }
  bool next(producers::SourceRecord&, std::optional<std::string>&) override { return false; }
  double progress() const override { return 1.0; }

 private:
  std::vector<std::string> columns_;
};

}  // namespace leadsync::bench
