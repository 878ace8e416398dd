#include "producers/run_record.h"

#include <spdlog/spdlog.h>

#include "common/text_encoding.h"

namespace leadsync::producers {
namespace {

// Bounds of what one row error stores: enough to see the problem, never a whole swallowed file.
constexpr std::size_t kMaxStoredValue = 1000;
constexpr std::size_t kMaxStoredMessage = 2000;

}  // namespace

bool write_run_errors(pqxx::work& tx, const std::string& source, const std::string& run_id,
                      const std::vector<RowError>& errors, std::string& problem) {
  if (errors.empty()) return true;
  tx.exec("SAVEPOINT leadsync_run_errors");
  try {
    for (const auto& e : errors) {
      tx.exec_params(
          "INSERT INTO leadsync.run_errors (run_id, source, line, key, column_name, value, message) "
          "VALUES ($1, $2, $3, NULLIF($4, ''), NULLIF($5, ''), NULLIF($6, ''), $7)",
          run_id, source, static_cast<int64_t>(e.position), common::storable_text(e.key, kMaxStoredValue),
          common::storable_text(e.column, kMaxStoredValue), common::storable_text(e.value, kMaxStoredValue),
          common::storable_text(e.message, kMaxStoredMessage));
    }
    tx.exec("RELEASE SAVEPOINT leadsync_run_errors");
    return true;
  } catch (const std::exception& e) {
    problem = common::storable_text(e.what(), 300);
    tx.exec("ROLLBACK TO SAVEPOINT leadsync_run_errors");
    spdlog::error("source {}: run {}: storing {} row error(s) failed: {}", source, run_id, errors.size(), problem);
    return false;
  }
}

}  // namespace leadsync::producers
