#include "producers/registry.h"

#include <variant>

#include "producers/csv/csv_source.h"
#include "producers/sheets/sheets_source.h"
#include "producers/twenty/twenty_source.h"

namespace leadsync::producers {
namespace {

// One factory per kind's settings type: a kind added to common::SourceSettings without one here
// does not compile.
struct Factory {
  const common::SourceConfig& source;
  const std::string& work_dir;

  std::unique_ptr<SourceAdapter> operator()(const common::CsvSettings& csv) const {
    return std::make_unique<CsvSource>(source, csv, work_dir);
  }
  std::unique_ptr<SourceAdapter> operator()(const common::SheetsSettings& sheets) const {
    return std::make_unique<SheetsSource>(source, sheets);
  }
  std::unique_ptr<SourceAdapter> operator()(const common::TwentySettings& twenty) const {
    return std::make_unique<TwentySource>(source, twenty);
  }
};

}  // namespace

std::unique_ptr<SourceAdapter> make_adapter(const common::SourceConfig& source, const std::string& work_dir) {
  return std::visit(Factory{source, work_dir}, source.settings);
}

}  // namespace leadsync::producers
