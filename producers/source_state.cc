#include "producers/source_state.h"

#include <libpq-fe.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstring>
#include <memory>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "common/pg.h"

namespace leadsync::producers {
namespace {

constexpr std::size_t kWriteBatch = 20'000;

}  // namespace

namespace {

// PostgreSQL's binary COPY format: this signature, a 32-bit flags word and a 32-bit header
// extension length (then that many bytes); per row a 16-bit field count (-1: the trailer, the end)
// and per field a 32-bit length (-1: NULL) and its bytes; integers big-endian.
constexpr std::string_view kCopySignature{"PGCOPY\n\377\r\n\0", 11};

uint32_t be32(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{u[0]} << 24) | (uint32_t{u[1]} << 16) | (uint32_t{u[2]} << 8) | uint32_t{u[3]};
}
uint64_t be64(const char* p) { return (uint64_t{be32(p)} << 32) | be32(p + 4); }

[[noreturn]] void malformed(const std::string& what) {
  throw std::runtime_error("loading the source's state: unexpected COPY data (" + what + ")");
}

}  // namespace

void SourceState::add_copy_data(std::string_view bytes) {
  if (copy_carry_.empty()) {
    const std::size_t used = parse_copy(bytes);
    if (used < bytes.size()) copy_carry_.assign(bytes.substr(used));
  } else {
    copy_carry_.append(bytes);
    copy_carry_.erase(0, parse_copy(copy_carry_));
  }
}

std::size_t SourceState::parse_copy(std::string_view bytes) {
  std::size_t at = 0;
  const auto left = [&] { return bytes.size() - at; };
  if (!copy_header_done_) {
    if (table_.size() != 0) throw std::logic_error("SourceState: the stored state loads only into an empty table");
    const auto signature = std::min(left(), kCopySignature.size());
    if (bytes.substr(0, signature) != kCopySignature.substr(0, signature)) malformed("no binary COPY signature");
    if (left() < kCopySignature.size() + 8) return 0;
    const std::size_t extension = be32(bytes.data() + kCopySignature.size() + 4);
    if (left() < kCopySignature.size() + 8 + extension) return 0;
    at = kCopySignature.size() + 8 + extension;
    copy_header_done_ = true;
  }
  while (left() > 0) {
    if (copy_ended_) malformed("data after the trailer");
    const char* row = bytes.data() + at;
    if (left() < 2) break;
    const auto fields = static_cast<int16_t>((static_cast<unsigned char>(row[0]) << 8) | static_cast<unsigned char>(row[1]));
    if (fields == -1) {
      copy_ended_ = true;
      at += 2;
      continue;
    }
    if (fields != 2) malformed(std::to_string(fields) + " fields in a row, not 2");
    if (left() < 2 + 4) break;
    const auto key_size = static_cast<int32_t>(be32(row + 2));
    if (key_size < 0) malformed("a NULL key");
    const std::size_t size = 2 + 4 + static_cast<std::size_t>(key_size) + 4 + 8;
    if (left() < size) break;
    const char* checksum = row + 2 + 4 + key_size;
    if (static_cast<int32_t>(be32(checksum)) != 8) malformed("a checksum that is not 8 bytes");
    // Keys come unique (the primary key is (source, key)) into a table that held none before.
    auto& e = table_.at(table_.insert_absent(std::string_view(row + 6, static_cast<std::size_t>(key_size))));
    e.checksum = be64(checksum + 4);
    e.known = true;
    ++known_;
    at += size;
  }
  return at;
}

void SourceState::end_copy_data() {
  table_.finish_absent();
  if (!copy_ended_ || !copy_carry_.empty()) malformed("it ended before COPY's trailer");
}

void SourceState::load(const std::string& postgres_url, const std::string& source, const std::atomic<bool>* cancelled) {
  // libpq itself (a binary COPY), connected as common::pg_connect connects.
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(
      PQconnectdb(common::pg_conninfo(postgres_url, "leadsync-producer").c_str()), &PQfinish);
  const auto started = std::chrono::steady_clock::now();
  const auto since = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  const auto fail = [&](const std::string& what) {
    std::string m = PQerrorMessage(conn.get());
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    throw std::runtime_error("loading the source's state: " + what + ": " + m);
  };
  if (PQstatus(conn.get()) != CONNECTION_OK) fail("cannot connect to PostgreSQL");
  // As common::pg_connect: a million-row scan is above jit_above_cost, and compiling it never pays back.
  std::unique_ptr<PGresult, decltype(&PQclear)> set(PQexec(conn.get(), "SET jit = off"), &PQclear);
  if (PQresultStatus(set.get()) != PGRES_COMMAND_OK) fail("cannot set up the read");
  {
    // The table is sized up front for as many keys as the last completed run stored or kept: it
    // then never re-hashes its keys while they stream in (a hint: more still fit).
    const char* params[] = {source.c_str()};
    std::unique_ptr<PGresult, decltype(&PQclear)> last(
        PQexecParams(conn.get(),
                     "SELECT coalesce(new_records, 0) + coalesce(changed_records, 0) + coalesce(unchanged_records, 0) "
                     "FROM leadsync.sync_runs WHERE source = $1 AND published_at IS NOT NULL "
                     "ORDER BY published_at DESC LIMIT 1",
                     1, nullptr, params, nullptr, nullptr, 0),
        &PQclear);
    if (PQresultStatus(last.get()) != PGRES_TUPLES_OK) fail("cannot read the last completed run");
    if (PQntuples(last.get()) == 1) {
      std::size_t keys = 0;
      const char* v = PQgetvalue(last.get(), 0, 0);
      std::from_chars(v, v + std::strlen(v), keys);
      table_.reserve(keys);
    }
  }
  // COPY takes no parameters: the source's name goes in as a quoted literal.
  std::unique_ptr<char, decltype(&PQfreemem)> literal(PQescapeLiteral(conn.get(), source.data(), source.size()),
                                                       &PQfreemem);
  if (!literal) fail("cannot quote the source's name");
  const std::string query = "COPY (SELECT key, checksum FROM leadsync.source_state WHERE source = " +
                            std::string(literal.get()) + ") TO STDOUT (FORMAT binary)";
  std::unique_ptr<PGresult, decltype(&PQclear)> copy(PQexec(conn.get(), query.c_str()), &PQclear);
  if (PQresultStatus(copy.get()) != PGRES_COPY_OUT) fail("cannot read leadsync.source_state");
  const double copy_started = since();
  double wait_s = 0;
  for (;;) {
    if (cancelled && cancelled->load(std::memory_order_relaxed)) return;  // PQfinish ends the COPY
    char* row = nullptr;
    int n = PQgetCopyData(conn.get(), &row, 1);
    if (n == 0) {
      const auto w = std::chrono::steady_clock::now();
      n = PQgetCopyData(conn.get(), &row, 0);
      wait_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - w).count();
    }
    if (n > 0) {
      std::unique_ptr<char, decltype(&PQfreemem)> owned(row, &PQfreemem);
      add_copy_data(std::string_view(row, static_cast<std::size_t>(n)));
      continue;
    }
    if (n == -2) fail("reading leadsync.source_state failed");
    break;  // -1: the COPY is over; its result says whether it succeeded
  }
  while (PGresult* end = PQgetResult(conn.get())) {
    const bool ok = PQresultStatus(end) == PGRES_COMMAND_OK;
    PQclear(end);
    if (!ok) fail("reading leadsync.source_state failed");
  }
  end_copy_data();
  spdlog::debug("source {}: state load: COPY started after {:.3f} s, {} key(s) in {:.3f} s, {:.3f} s of it waiting for "
                "PostgreSQL", source, copy_started, known_, since(), wait_s);
}

StateLoad::StateLoad(SourceState& state, std::string postgres_url, std::string source)
    : thread_([this, &state, url = std::move(postgres_url), source = std::move(source)] {
        try {
          state.load(url, source, &cancelled_);
        } catch (...) {
          failure_ = std::current_exception();
        }
      }) {}

StateLoad::~StateLoad() {
  if (!thread_.joinable()) return;
  cancelled_ = true;
  thread_.join();
}

double StateLoad::wait() {
  const auto from = std::chrono::steady_clock::now();
  if (thread_.joinable()) thread_.join();
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - from).count();
  if (failure_) std::rethrow_exception(std::exchange(failure_, nullptr));
  return waited;
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
    const auto at = std::find(changed_.begin(), changed_.end(), id);
    // Written ahead already: the DELETE of the forgotten keys, later in the same transaction, undoes it.
    if (static_cast<std::size_t>(at - changed_.begin()) < written_) --written_;
    changed_.erase(at);
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

void SourceState::upsert_checksums(pqxx::transaction_base& tx, const std::string& source, const std::string& keys,
                                   const std::string& checksums, int64_t version, const std::string& run_id) {
  tx.exec_params(
      "INSERT INTO leadsync.source_state (source, key, checksum, version, run_id) "
      "SELECT $1, k, c, $4, $5 FROM unnest($2::text[], $3::bigint[]) AS u(k, c) "
      "ON CONFLICT (source, key) DO UPDATE SET checksum = EXCLUDED.checksum, version = EXCLUDED.version, "
      "run_id = EXCLUDED.run_id",
      source, keys, checksums, version, run_id);
}

std::size_t SourceState::take_unwritten(std::string& keys, std::string& checksums) {
  common::TextArrayLiteral list;
  checksums = "{";
  for (std::size_t j = written_; j < changed_.size(); ++j) {
    list.add(table_.key(changed_[j]));
    if (j > written_) checksums += ',';
    checksums += std::to_string(static_cast<int64_t>(table_.at(changed_[j]).checksum));
  }
  checksums += '}';
  keys = list.str();
  const auto n = changed_.size() - written_;
  written_ = changed_.size();
  return n;
}

void SourceState::write(pqxx::transaction_base& tx, const std::string& source, int64_t version,
                        const std::string& run_id) const {
  for (std::size_t i = written_; i < changed_.size(); i += kWriteBatch) {
    common::TextArrayLiteral keys;
    std::string checksums = "{";
    for (std::size_t j = i; j < std::min(changed_.size(), i + kWriteBatch); ++j) {
      keys.add(table_.key(changed_[j]));
      if (j > i) checksums += ',';
      checksums += std::to_string(static_cast<int64_t>(table_.at(changed_[j]).checksum));
    }
    upsert_checksums(tx, source, keys.str(), checksums + "}", version, run_id);
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

StateWriteAhead::StateWriteAhead(std::string postgres_url, std::string source, int64_t version, std::string run_id)
    : url_(std::move(postgres_url)), source_(std::move(source)), run_id_(std::move(run_id)), version_(version),
      thread_([this] { loop(); }) {}

StateWriteAhead::~StateWriteAhead() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  thread_.join();
  tx_.reset();  // not committed: rolled back
}

void StateWriteAhead::write(std::string keys, std::string checksums) {
  {
    std::lock_guard lock(mutex_);
    if (!failure_.empty()) return;
    queue_.emplace_back(std::move(keys), std::move(checksums));
  }
  wake_.notify_all();
}

void StateWriteAhead::loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    auto [keys, checksums] = std::move(queue_.front());
    queue_.pop_front();
    busy_ = true;
    lock.unlock();
    std::string failed;
    try {
      if (!tx_) {
        conn_ = common::pg_connect(url_, "leadsync-producer");
        tx_ = std::make_unique<pqxx::work>(*conn_);
      }
      SourceState::upsert_checksums(*tx_, source_, keys, checksums, version_, run_id_);
    } catch (const std::exception& e) {
      failed = e.what();
      if (failed.empty()) failed = "unknown error";
    }
    lock.lock();
    busy_ = false;
    if (!failed.empty()) {
      failure_ = failed;
      queue_.clear();
    }
    wake_.notify_all();
  }
}

pqxx::work* StateWriteAhead::finish(std::string& why) {
  std::unique_lock lock(mutex_);
  wake_.wait(lock, [&] { return queue_.empty() && !busy_; });
  if (!failure_.empty()) {
    why = failure_;
    return nullptr;
  }
  if (!tx_) {
    why = "nothing was written ahead";
    return nullptr;
  }
  try {
    // Still there? An outage while the read went on (the connection idle in its transaction)
    // would otherwise fail the run's end, which a fresh transaction on the run's own connection
    // can still complete.
    tx_->exec("SELECT 1");
  } catch (const std::exception& e) {
    why = e.what();
    failure_ = why;
    return nullptr;
  }
  return tx_.get();
}

}  // namespace leadsync::producers
