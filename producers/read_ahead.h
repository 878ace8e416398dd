// Reading and mapping ahead of the run, over both cores (issue 12): worker threads take turns
// reading the next batch of records from the adapter (one at a time, so batches are numbered in
// read order), map their batch in parallel, and the run takes the batches back strictly in read
// order. Everything order-dependent — duplicates, the state, rejects and their lines, counts,
// publishing, checkpoints — stays with the run on its own thread, as if it had read the records one
// by one.
//
// Each batch carries where the read stands after its last record (the adapter's checkpoint and
// progress), so the run checkpoints between batches exactly at what it has taken. A read that fails
// (the adapter throws) delivers the records before the failure, then rethrows it.
//
// Nothing else may touch the adapter while a ReadAhead lives; its destructor stops and joins the
// threads (a worker inside adapter.next() finishes that call first).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/mapping.h"
#include "producers/mapper.h"
#include "producers/source.h"

namespace leadsync::producers {

struct ReadItem {
  // What the record is: kBlank (no cell, no key: skipped), kDelete (an incremental read's delete),
  // kUnreadable (the adapter could not parse it: `parse_error`), kRejected (the mapper rejected
  // it: `error`), kMapped (`event`).
  enum class Kind { kBlank, kDelete, kUnreadable, kRejected, kMapped };
  Kind kind = Kind::kBlank;
  SourceRecord record;
  std::optional<std::string> parse_error;
  common::ChangeEvent event;
  std::vector<common::Value*> slots;  // the event's field slots (Mapper::map)
  RowError error;
};

struct ReadBatch {
  std::vector<ReadItem> items;  // only the first `count` belong to this batch (the rest is spare capacity)
  std::size_t count = 0;
  std::optional<Checkpoint> checkpoint;  // after the batch's last record
  double progress = 0;
  uint64_t seq = 0;
  bool last = false;             // the read ended with this batch
  std::exception_ptr failure;    // the read failed after this batch's records
};

class ReadAhead {
 public:
  // `threads` readers/mappers (at least 1), `batch_rows` records per batch, at most `in_flight`
  // batches read but not yet given back by the run (the memory bound).
  ReadAhead(SourceAdapter& adapter, const Mapper& mapper, unsigned threads, std::size_t batch_rows = 128,
            std::size_t in_flight = 4);
  ~ReadAhead();
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // The next batch in read order, the run's until the next call (it may modify the items, e.g.
  // stamp and publish their events); nullptr once the read ended. Rethrows the read's failure
  // after the batch that precedes it.
  ReadBatch* next();

  // The thread count for this machine: both cores when there are two or more.
  static unsigned default_threads();

 private:
  void work();
  void read_batch(ReadBatch& b);
  void map_batch(ReadBatch& b);

  SourceAdapter& adapter_;
  const Mapper& mapper_;
  const std::size_t batch_rows_;
  const std::size_t in_flight_limit_;

  std::mutex read_mutex_;  // one reader at a time: the adapter is not thread-safe
  bool read_ended_ = false;  // under read_mutex_

  std::mutex mutex_;  // the rest
  std::condition_variable space_;  // a batch came back to the pool, or stop
  std::condition_variable ready_;  // a batch is mapped
  std::atomic<bool> stop_{false};  // set under mutex_ (for the waits), read without it between records
  std::size_t in_flight_ = 0;
  uint64_t next_seq_ = 0;     // under read_mutex_
  uint64_t expected_seq_ = 0;
  std::vector<std::unique_ptr<ReadBatch>> pool_;
  std::map<uint64_t, std::unique_ptr<ReadBatch>> done_;
  std::unique_ptr<ReadBatch> current_;  // handed to the run
  std::exception_ptr pending_failure_;
  bool finished_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace leadsync::producers
