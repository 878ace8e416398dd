#include "producers/read_ahead.h"

#include <algorithm>
#include <utility>

namespace leadsync::producers {

ReadAhead::ReadAhead(SourceAdapter& adapter, const Mapper& mapper, unsigned threads, std::size_t batch_rows,
                     std::size_t in_flight)
    : adapter_(adapter),
      mapper_(mapper),
      batch_rows_(std::max<std::size_t>(batch_rows, 1)),
      in_flight_limit_(std::max<std::size_t>(in_flight, 2)) {
  threads = std::max(threads, 1u);
  threads_.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) threads_.emplace_back([this] { work(); });
}

ReadAhead::~ReadAhead() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  space_.notify_all();
  for (auto& t : threads_) t.join();
}

unsigned ReadAhead::default_threads() { return std::clamp(std::thread::hardware_concurrency(), 1u, 2u); }

void ReadAhead::work() {
  for (;;) {
    std::unique_ptr<ReadBatch> b;
    {
      std::unique_lock lock(mutex_);
      space_.wait(lock, [&] { return stop_ || in_flight_ < in_flight_limit_; });
      if (stop_) return;
      ++in_flight_;
      if (!pool_.empty()) {
        b = std::move(pool_.back());
        pool_.pop_back();
      }
    }
    if (!b) b = std::make_unique<ReadBatch>();
    bool ended = false;
    {
      std::lock_guard read_lock(read_mutex_);
      if (!read_ended_) {
        b->seq = next_seq_++;
        read_batch(*b);
        read_ended_ = b->last;
      } else {
        ended = true;
      }
    }
    if (ended) {
      std::lock_guard lock(mutex_);
      --in_flight_;
      pool_.push_back(std::move(b));
      return;
    }
    map_batch(*b);
    {
      std::lock_guard lock(mutex_);
      done_.emplace(b->seq, std::move(b));
    }
    ready_.notify_all();
  }
}

void ReadAhead::read_batch(ReadBatch& b) {
  b.count = 0;
  b.last = false;
  b.failure = nullptr;
  try {
    while (b.count < batch_rows_) {
      if (stop_.load(std::memory_order_relaxed)) break;
      if (b.items.size() == b.count) b.items.emplace_back();
      auto& item = b.items[b.count];
      if (!adapter_.next(item.record, item.parse_error)) {
        b.last = true;
        break;
      }
      ++b.count;
    }
  } catch (...) {
    b.failure = std::current_exception();
    b.last = true;
  }
  // Where the read stands after the batch's last record; the run checkpoints there.
  try {
    b.checkpoint = adapter_.checkpoint();
    b.progress = adapter_.progress();
  } catch (...) {
    if (!b.failure) b.failure = std::current_exception();
    b.last = true;
  }
}

void ReadAhead::map_batch(ReadBatch& b) {
  for (std::size_t i = 0; i < b.count; ++i) {
    auto& item = b.items[i];
    try {
      if (item.record.op == RecordOp::kDelete) {
        item.kind = ReadItem::Kind::kDelete;
      } else if (Mapper::is_blank(item.record)) {
        item.kind = ReadItem::Kind::kBlank;
      } else if (item.parse_error) {
        item.kind = ReadItem::Kind::kUnreadable;
      } else {
        item.kind = mapper_.map(item.record, item.event, item.error, item.slots) ? ReadItem::Kind::kMapped
                                                                     : ReadItem::Kind::kRejected;
      }
    } catch (...) {
      // The run takes the records before this one, then fails.
      b.count = i;
      b.failure = std::current_exception();
      b.last = true;
      std::lock_guard read_lock(read_mutex_);
      read_ended_ = true;
      return;
    }
  }
}

ReadBatch* ReadAhead::next() {
  std::unique_lock lock(mutex_);
  if (current_) {
    pool_.push_back(std::move(current_));
    --in_flight_;
    space_.notify_one();
  }
  if (pending_failure_) {
    finished_ = true;
    std::rethrow_exception(std::exchange(pending_failure_, nullptr));
  }
  if (finished_) return nullptr;
  ready_.wait(lock, [&] { return done_.count(expected_seq_) > 0; });
  auto it = done_.find(expected_seq_);
  current_ = std::move(it->second);
  done_.erase(it);
  ++expected_seq_;
  if (current_->last) finished_ = true;
  if (current_->failure) {
    if (current_->count == 0) std::rethrow_exception(current_->failure);
    pending_failure_ = current_->failure;
  }
  if (current_->count == 0) return nullptr;
  return current_.get();
}

}  // namespace leadsync::producers
