#include "producers/source_state.h"

#include <algorithm>

#include "common/pg.h"

namespace leadsync::producers {
namespace {

constexpr std::size_t kWriteBatch = 20'000;

}  // namespace

void SourceState::load(pqxx::connection& conn, const std::string& source) {
  pqxx::work tx(conn);
  tx.exec_params("DECLARE state_cursor NO SCROLL CURSOR FOR SELECT key, checksum FROM leadsync.source_state "
                 "WHERE source = $1",
                 source);
  for (;;) {
    const auto rows = tx.exec("FETCH 50000 FROM state_cursor");
    if (rows.empty()) break;
    for (const auto& r : rows) {
      bool inserted = false;
      auto& e = table_.at(table_.find_or_insert(std::string_view(r[0].c_str(), r[0].size()), inserted));
      e.checksum = static_cast<uint64_t>(r[1].as<int64_t>());
      e.known = true;
      ++known_;
    }
  }
  tx.commit();
}

SourceState::Seen SourceState::observe(std::string_view key, uint64_t checksum, std::size_t line,
                                       std::size_t& first_line) {
  bool inserted = false;
  const auto id = table_.find_or_insert(key, inserted);
  auto& e = table_.at(id);
  if (e.seen) {
    first_line = e.first_line;
    return Seen::kDuplicate;
  }
  e.seen = true;
  e.first_line = static_cast<uint32_t>(line);
  seen_now(id);
  if (e.known && e.checksum == checksum && !ignore_checksums_) return Seen::kUnchanged;
  const auto seen = e.known ? Seen::kChanged : Seen::kNew;
  e.checksum = checksum;
  e.changed = true;
  changed_.push_back(id);
  return seen;
}

void SourceState::keep(std::string_view key) {
  if (const auto id = table_.find(key); id != KeyTable::kNone && !table_.at(id).seen) {
    table_.at(id).seen = true;
    seen_now(id);
  }
}

void SourceState::remove(std::string_view key, std::size_t line) {
  bool inserted = false;
  const auto id = table_.find_or_insert(key, inserted);
  auto& e = table_.at(id);
  if (e.deleted) return;
  e.seen = true;
  e.deleted = true;
  e.first_line = static_cast<uint32_t>(line);
  if (e.changed) {  // upserted earlier in this read: the delete wins
    e.changed = false;
    changed_.erase(std::find(changed_.begin(), changed_.end(), id));
  }
  forgotten_.emplace_back(key);
  seen_now(id);
}

void SourceState::forget(std::vector<std::string> keys) {
  forgotten_.insert(forgotten_.end(), std::make_move_iterator(keys.begin()), std::make_move_iterator(keys.end()));
}

void SourceState::keep_any_of(const std::vector<std::string>& cells) {
  for (const auto& cell : cells) keep(cell);
}

std::vector<std::string> SourceState::vanished() const {
  std::vector<std::string> gone;
  for (KeyTable::Id id = 0; id < table_.size(); ++id) {
    if (const auto& e = table_.at(id); e.known && !e.seen) gone.emplace_back(table_.key(id));
  }
  return gone;
}

void SourceState::write(pqxx::transaction_base& tx, const std::string& source, int64_t version,
                        const std::string& run_id) const {
  for (std::size_t i = 0; i < changed_.size(); i += kWriteBatch) {
    common::TextArrayLiteral keys;
    std::string checksums = "{";
    for (std::size_t j = i; j < std::min(changed_.size(), i + kWriteBatch); ++j) {
      keys.add(table_.key(changed_[j]));
      if (j > i) checksums += ',';
      checksums += std::to_string(static_cast<int64_t>(table_.at(changed_[j]).checksum));
    }
    tx.exec_params(
        "INSERT INTO leadsync.source_state (source, key, checksum, version, run_id) "
        "SELECT $1, k, c, $4, $5 FROM unnest($2::text[], $3::bigint[]) AS u(k, c) "
        "ON CONFLICT (source, key) DO UPDATE SET checksum = EXCLUDED.checksum, version = EXCLUDED.version, "
        "run_id = EXCLUDED.run_id",
        source, keys.str(), checksums + "}", version, run_id);
  }
  for (std::size_t i = 0; i < forgotten_.size(); i += kWriteBatch) {
    common::TextArrayLiteral gone;
    for (std::size_t j = i; j < std::min(forgotten_.size(), i + kWriteBatch); ++j) gone.add(forgotten_[j]);
    tx.exec_params("DELETE FROM leadsync.source_state WHERE source = $1 AND key = ANY($2::text[])", source,
                   gone.str());
  }
}

}  // namespace leadsync::producers

namespace leadsync::producers {

void SourceState::save_progress(pqxx::transaction_base& tx, const std::string& source, const std::string& run_id) {
  for (std::size_t i = 0; i < pending_.size(); i += kWriteBatch) {
    common::TextArrayLiteral keys;
    std::string checksums = "{", lines = "{", deleted = "{";
    for (std::size_t j = i; j < std::min(pending_.size(), i + kWriteBatch); ++j) {
      const auto& e = table_.at(pending_[j]);
      keys.add(table_.key(pending_[j]));
      const char* sep = j > i ? "," : "";
      checksums += sep + (e.changed ? std::to_string(static_cast<int64_t>(e.checksum)) : std::string("NULL"));
      lines += sep + std::to_string(e.first_line);
      deleted += sep + std::string(e.deleted ? "t" : "f");
    }
    tx.exec_params(
        "INSERT INTO leadsync.run_progress_keys (source, key, checksum, line, deleted, run_id) "
        "SELECT $1, k, c, l, d, $6 FROM unnest($2::text[], $3::bigint[], $4::bigint[], $5::boolean[]) AS u(k, c, l, d) "
        "ON CONFLICT (source, key) DO UPDATE SET checksum = EXCLUDED.checksum, line = EXCLUDED.line, "
        "deleted = EXCLUDED.deleted, run_id = EXCLUDED.run_id",
        source, keys.str(), checksums + "}", lines + "}", deleted + "}", run_id);
  }
  pending_.clear();
}

std::size_t SourceState::load_progress(pqxx::connection& conn, const std::string& source) {
  pqxx::work tx(conn);
  tx.exec_params("DECLARE progress_cursor NO SCROLL CURSOR FOR SELECT key, checksum, line, deleted "
                 "FROM leadsync.run_progress_keys WHERE source = $1",
                 source);
  std::size_t n = 0;
  for (;;) {
    const auto rows = tx.exec("FETCH 50000 FROM progress_cursor");
    if (rows.empty()) break;
    for (const auto& r : rows) {
      bool inserted = false;
      const auto id = table_.find_or_insert(std::string_view(r[0].c_str(), r[0].size()), inserted);
      auto& e = table_.at(id);
      e.seen = true;
      e.first_line = static_cast<uint32_t>(r[2].as<int64_t>());
      if (r[3].as<bool>()) {
        e.deleted = true;
        forgotten_.emplace_back(table_.key(id));
      } else if (!r[1].is_null()) {
        e.checksum = static_cast<uint64_t>(r[1].as<int64_t>());
        e.changed = true;
        changed_.push_back(id);
      }
      ++n;
    }
  }
  tx.commit();
  return n;
}

void SourceState::clear_progress(pqxx::transaction_base& tx, const std::string& source) {
  tx.exec_params("DELETE FROM leadsync.run_progress_keys WHERE source = $1", source);
}

}  // namespace leadsync::producers
