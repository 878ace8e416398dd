// kind: firestore — the documents of a collection, a sub-collection or a collection group
// (sources.md "Firestore REST"), read page by page with runQuery and cursors.
//
//  - Full read (open): every document ordered by __name__, `page_size` per request, all pages at
//    the first page's readTime, so the read is one consistent snapshot; a document missing from it
//    is a deletion (with the shared guardrails).
//  - Incremental (changes_since): Firestore cannot filter on a document's updateTime (the emulator
//    answers such a filter with nothing, and one on __update_time__ with 400), so only documents
//    whose configured timestamp field (`updated_field`) is at or after the last run's high-water
//    mark minus `overlap` are read, ordered by (that field, __name__). Re-read documents cost one
//    checksum comparison. Deletions are invisible to such a read: once `full_scan_every` has passed
//    since the last full read, changes_since() declines and the run does a full read.
//  - Resumable: checkpoint() is the cursor after the last document returned.
//
// Columns are field paths: `email`, `address.city` (through maps), and `__name__`, the document id,
// which is the key when key_column is `__name__`. A document's updateTime is its source version.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/source_config.h"
#include "producers/firestore/firestore_client.h"
#include "producers/source.h"

namespace leadsync::producers {

class FirestoreSource : public SourceAdapter {
 public:
  FirestoreSource(const common::SourceConfig& config, const common::FirestoreSettings& settings);
  ~FirestoreSource() override;

  std::string open() override;
  const std::vector<std::string>& columns() const override { return columns_; }
  std::vector<std::string> column_warnings() const override { return {}; }
  bool is_duplicate_column(const std::string&) const override { return false; }
  bool next(SourceRecord& out, std::optional<std::string>& error) override;
  double progress() const override;

  bool changes_since(const Checkpoint& cursor) override;
  std::optional<Checkpoint> checkpoint() const override;
  bool resume(const Checkpoint& from) override;

  // The column that names the document id instead of a field.
  static constexpr const char* kDocumentId = "__name__";

 private:
  enum class Mode { kClosed, kFull, kChanges };
  void start(Mode mode);
  void fetch_page();
  nlohmann::json page_query() const;
  void fill(const nlohmann::json& document, SourceRecord& out, std::optional<std::string>& error);

  common::SourceConfig config_;
  common::FirestoreSettings settings_;
  std::unique_ptr<firestore::FirestoreClient> client_;
  std::vector<std::string> columns_;
  Mode mode_ = Mode::kClosed;
  std::deque<nlohmann::json> page_;
  bool exhausted_ = false;
  std::string read_time_;       // the snapshot of this read (the first page's readTime)
  std::string after_name_;      // the cursor: the last document returned…
  nlohmann::json after_value_;  // …and, incremental, its updated_field value (typed)
  nlohmann::json since_;        // incremental: the first page starts at this typed timestamp
  int64_t high_water_ = 0;      // the newest updated_field value seen (µs), carried between runs
  int64_t full_at_ = 0;         // when the last full read started (µs), carried between runs
  uint64_t returned_ = 0;
  std::optional<uint64_t> total_;
};

}  // namespace leadsync::producers
