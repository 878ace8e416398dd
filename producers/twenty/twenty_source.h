// kind: twenty — Twenty CRM's REST API as a source (sources.md "Twenty CRM", issue 9): lists of
// people or companies ordered by (updatedAt, id) with keyset cursors (`starting_after`), read page by
// page through the shared HTTP client (429 backoff, Retry-After, the source's rate limit).
//
// Incremental: changes_since() reads the records updated at or after the stored high-water mark,
// then the ones soft-deleted since (a list includes deleted records only when its filter names
// deletedAt), which become deletes. Every record's source version is its updatedAt, the same as a
// webhook delivery of that change carries, so polling and webhooks can arrive in any order.
// checkpoint()/resume() continue an interrupted read after the last page that was fully returned.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/http_client.h"
#include "common/source_config.h"
#include "producers/source.h"

namespace leadsync::producers {

class TwentySource : public SourceAdapter {
 public:
  // Reads the API key from the environment variable the settings name; throws ConfigError when it is unset.
  TwentySource(const common::SourceConfig& source, const common::TwentySettings& settings,
               common::HttpSleep sleep = nullptr);

  std::string open() override;
  const std::vector<std::string>& columns() const override { return columns_; }
  std::vector<std::string> column_warnings() const override { return {}; }
  bool is_duplicate_column(const std::string&) const override { return false; }
  bool next(SourceRecord& out, std::optional<std::string>& error) override;
  double progress() const override;

  bool changes_since(const Checkpoint& cursor) override;
  std::optional<Checkpoint> checkpoint() const override;
  bool resume(const Checkpoint& from) override;

 private:
  enum class Phase { kLive, kDeleted, kDone };
  struct State {
    Phase phase = Phase::kDone;
    bool incremental = false;
    std::string since_updated;  // lower bound of this read's live phase (ISO), empty: everything
    std::string since_deleted;  // lower bound of its deleted phase, empty: no deleted phase
    std::string after;          // starting_after of the page being returned (all before it returned)
    std::string max_updated;    // high-water marks of what this read returned
    std::string max_deleted;
  };

  void start(State state);
  bool fetch_page();
  std::string page_url() const;
  void check_paths(const nlohmann::json& record) const;

  const common::SourceConfig& source_;
  common::TwentySettings settings_;
  std::string base_;     // ends in '/'
  std::string api_key_;  // never logged
  common::HttpClient http_;
  std::vector<std::string> columns_;
  State state_;
  nlohmann::json page_;            // the records of the page being returned
  std::size_t page_index_ = 0;
  std::string page_end_cursor_;    // its endCursor
  bool page_has_next_ = false;
  bool page_loaded_ = false;
  bool paths_checked_ = false;
  std::size_t position_ = 0;
  std::size_t phase_total_ = 0;
  std::size_t phase_read_ = 0;
};

}  // namespace leadsync::producers
