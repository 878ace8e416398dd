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
      auto& e = entries_[r[0].as<std::string>()];
      e.checksum = static_cast<uint64_t>(r[1].as<int64_t>());
      e.known = true;
      ++known_;
    }
  }
  tx.commit();
}

SourceState::Seen SourceState::observe(const std::string& key, uint64_t checksum, std::size_t line,
                                       std::size_t& first_line) {
  auto [it, inserted] = entries_.try_emplace(key);
  Entry& e = it->second;
  if (e.seen) {
    first_line = e.first_line;
    return Seen::kDuplicate;
  }
  e.seen = true;
  e.first_line = static_cast<uint32_t>(line);
  if (e.known && e.checksum == checksum && !ignore_checksums_) return Seen::kUnchanged;
  const auto seen = e.known ? Seen::kChanged : Seen::kNew;
  e.checksum = checksum;
  changed_.push_back(&*it);
  return seen;
}

void SourceState::keep(const std::string& key) {
  if (auto it = entries_.find(key); it != entries_.end()) it->second.seen = true;
}

void SourceState::keep_any_of(const std::vector<std::string>& cells) {
  for (const auto& cell : cells) keep(cell);
}

std::vector<std::string> SourceState::vanished() const {
  std::vector<std::string> gone;
  for (const auto& [key, e] : entries_) {
    if (e.known && !e.seen) gone.push_back(key);
  }
  return gone;
}

void SourceState::write(pqxx::transaction_base& tx, const std::string& source, int64_t version,
                        const std::string& run_id) const {
  for (std::size_t i = 0; i < changed_.size(); i += kWriteBatch) {
    common::TextArrayLiteral keys;
    std::string checksums = "{";
    for (std::size_t j = i; j < std::min(changed_.size(), i + kWriteBatch); ++j) {
      keys.add(changed_[j]->first);
      if (j > i) checksums += ',';
      checksums += std::to_string(static_cast<int64_t>(changed_[j]->second.checksum));
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
