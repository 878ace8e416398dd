// The part of an adapter whose records start with a header row (a CSV file, a Sheets range): the
// columns and their problems come from common::parse_csv_header, so every such source names, trims
// and checks its columns by the same rules (one code path).
#pragma once

#include <string>
#include <vector>

#include "common/csv.h"
#include "producers/source.h"

namespace leadsync::producers {

class HeaderRowSource : public SourceAdapter {
 public:
  const std::vector<std::string>& columns() const override { return header_.names; }
  std::vector<std::string> column_warnings() const override { return common::describe_header_issues(header_); }
  bool is_duplicate_column(const std::string& name) const override { return header_.is_duplicate(name); }

 protected:
  // The header row's cells as read (an empty list: the source has no header row).
  void set_header(const std::vector<std::string>& cells) { header_ = common::parse_csv_header(cells); }

 private:
  common::CsvHeader header_;
};

}  // namespace leadsync::producers
