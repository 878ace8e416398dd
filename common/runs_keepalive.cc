#include "common/runs_keepalive.h"

#include <spdlog/spdlog.h>

#include "common/pg.h"

namespace leadsync::common {

RunKeepalive::RunKeepalive(std::string postgres_url, std::string run_id, std::chrono::milliseconds interval)
    : url_(std::move(postgres_url)), run_id_(std::move(run_id)), interval_(interval), thread_([this] { loop(); }) {}

RunKeepalive::~RunKeepalive() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void RunKeepalive::loop() {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_lock lock(mutex_);
  while (!wake_.wait_for(lock, interval_, [&] { return stop_; })) {
    lock.unlock();
    try {
      if (!conn) conn = pg_connect(url_, "leadsync-producer-keepalive");
      pqxx::work tx(*conn);
      tx.exec_params("UPDATE leadsync.sync_runs SET heartbeat_at = now() WHERE run_id = $1 AND status = 'running'",
                     run_id_);
      tx.commit();
    } catch (const std::exception& e) {
      conn.reset();
      spdlog::warn("run {}: keepalive heartbeat failed: {}", run_id_, e.what());
    }
    lock.lock();
  }
}

}  // namespace leadsync::common
