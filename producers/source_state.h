// The per-key checksums a source's completed runs left in leadsync.source_state (R9), and what the
// current run makes of them: which records are new, changed, unchanged or gone. Written back only
// when the run completes, in the transaction that completes it.
//
// An interrupted read resumes: with each checkpoint the keys seen since the last one go to
// leadsync.run_progress_keys (save_progress), and the run that resumes reads them back
// (load_progress), so those keys are neither re-read nor mistaken for deleted ones.
#pragma once

#include <pqxx/pqxx>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "producers/key_table.h"

namespace leadsync::producers {

class SourceState {
 public:
  enum class Seen { kNew, kChanged, kUnchanged, kDuplicate };

  // Reads the stored checksums of `source`: a binary COPY streamed over a connection of its own to
  // `postgres_url` (PostgreSQL produces the rows while this parses them). `cancelled`, when given and
  // set, ends the load early (StateLoad's destructor). Only into a SourceState nothing was observed in.
  void load(const std::string& postgres_url, const std::string& source, const std::atomic<bool>* cancelled = nullptr);
  // The load's parser, public for its tests: `bytes` continue the binary COPY of (key text,
  // checksum bigint) rows (PostgreSQL's binary COPY format), in any split; each row's key becomes
  // a known key. end_copy_data() throws unless the data ended with COPY's trailer.
  void add_copy_data(std::string_view bytes);
  void end_copy_data();
  // A full publish: every record observed from now on counts as new or changed, whatever its
  // stored checksum (the stored keys still tell which records vanished).
  void ignore_checksums() { ignore_checksums_ = true; }
  // Keys stored by the previous runs.
  std::size_t known() const { return known_; }

  // Records that the snapshot holds `key` with `checksum` at `line`. For a duplicate key,
  // `first_line` is where the key was seen first and nothing changes.
  Seen observe(std::string_view key, uint64_t checksum, std::size_t line, std::size_t& first_line);
  // observe(key) comes soon: see KeyTable::prefetch.
  void prefetch(std::string_view key, int step) const { table_.prefetch(key, step); }
  // A record is present but could not be mapped: it is not a deletion, and its state stays as it was.
  void keep(std::string_view key);
  // A malformed line whose key column is unknown: keeps alive any stored key among its cells.
  void keep_any_of(const std::vector<std::string>& cells);

  // An incremental read's delete of `key` (at `line`): its state goes when the run completes.
  void remove(std::string_view key, std::size_t line);

  // Stored keys the snapshot no longer holds.
  std::vector<std::string> vanished() const;
  // The run published DELETEs for these keys: their state goes when the run completes.
  void forget(std::vector<std::string> keys);

  // Upserts the new and changed checksums not written ahead and removes the forgotten keys, in batches.
  void write(pqxx::transaction_base& tx, const std::string& source, int64_t version, const std::string& run_id) const;

  // Writing ahead (StateWriteAhead): the changed checksums not yet handed out, as the two array
  // literals upsert_checksums takes; from now on they count as written. Returns how many.
  std::size_t unwritten() const { return changed_.size() - written_; }
  std::size_t take_unwritten(std::string& keys, std::string& checksums);
  // What was handed out was not written after all (the transaction it went into is gone).
  void unwrite_all() { written_ = 0; }
  // The upsert of write(): `keys` and `checksums` are a text[] and a bigint[] literal.
  static void upsert_checksums(pqxx::transaction_base& tx, const std::string& source, const std::string& keys,
                               const std::string& checksums, int64_t version, const std::string& run_id);

  // What the read saw since the last save, stored with a checkpoint (in the checkpoint's transaction).
  void save_progress(pqxx::transaction_base& tx, const std::string& source, const std::string& run_id);
  // After load(): what an interrupted read of `source` had seen up to its checkpoint counts as seen
  // by this run. Returns the number of keys.
  std::size_t load_progress(pqxx::connection& conn, const std::string& source);
  // A run that starts afresh, or completes, leaves no interrupted read behind.
  static void clear_progress(pqxx::transaction_base& tx, const std::string& source);

 // Bytes the per-key table holds (see key_table.h).
  std::size_t memory_bytes() const { return table_.memory_bytes(); }

 private:
  void seen_now(KeyTable::Id id) { pending_.push_back(id); }
  std::size_t parse_copy(std::string_view bytes);  // the bytes it used: whole rows (and the header)
  KeyTable table_;
  std::vector<KeyTable::Id> changed_;
  std::size_t written_ = 0;  // changed_[0, written_) went to StateWriteAhead
  std::vector<KeyTable::Id> pending_;  // seen since the last save_progress()
  std::vector<std::string> forgotten_;
  std::size_t known_ = 0;
  bool ignore_checksums_ = false;
  // The binary COPY being parsed (add_copy_data).
  std::string copy_carry_;  // the part of a row (or of the header) that the last bytes cut off
  bool copy_header_done_ = false;
  bool copy_ended_ = false;
};

// SourceState::load in a thread of its own, from construction: the run goes on meanwhile with what
// needs no state (hashing the snapshot, opening the read), then wait()s. Nothing may touch `state`
// until wait() returned. A load not waited for is cancelled by the destructor.
class StateLoad {
 public:
  StateLoad(SourceState& state, std::string postgres_url, std::string source);
  ~StateLoad();
  StateLoad(const StateLoad&) = delete;
  StateLoad& operator=(const StateLoad&) = delete;

  // Until the state is loaded; rethrows the load's failure. Returns the seconds waited.
  double wait();

 private:
  std::atomic<bool> cancelled_{false};
  std::exception_ptr failure_;
  std::thread thread_;
};

// The run's changed checksums, upserted while the run still reads (issue 12, S2: at the end, the
// upsert of 10,378 changed keys took 0.78 s right after a checkpoint, each key's page a full-page
// image in the WAL). They go into a transaction of a connection of its own, which stays open: the
// run completes that same transaction at its end (the rest of the state, its errors, its row) and
// commits it only then, after Kafka acknowledged every event — the state still moves with the run
// in one transaction, and a run that does not complete rolls it back.
//
// A thread writes what write() queues, in order. If a write fails (the connection or the
// transaction is lost, e.g. to idle_in_transaction_session_timeout during a slow source), the rest
// is dropped and finish() says so: the run then writes everything itself, as without this.
class StateWriteAhead {
 public:
  StateWriteAhead(std::string postgres_url, std::string source, int64_t version, std::string run_id);
  ~StateWriteAhead();  // joins; a transaction not committed by the caller rolls back
  StateWriteAhead(const StateWriteAhead&) = delete;
  StateWriteAhead& operator=(const StateWriteAhead&) = delete;

  // Queues an upsert of SourceState::take_unwritten's literals; returns at once.
  void write(std::string keys, std::string checksums);
  // Waits until every queued upsert ran. The transaction that holds them, for the caller to complete
  // and commit; nullptr if one failed (`why` says what), and nothing of them counts.
  pqxx::work* finish(std::string& why);

 private:
  void loop();

  const std::string url_, source_, run_id_;
  const int64_t version_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::string, std::string>> queue_;
  bool busy_ = false, stop_ = false;
  std::string failure_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<pqxx::work> tx_;
  std::thread thread_;
};

}  // namespace leadsync::producers
