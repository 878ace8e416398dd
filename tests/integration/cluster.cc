#include "tests/integration/cluster.h"

#include <cstdlib>
#include <random>

#include "common/kafka.h"
#include "common/schema.h"
#include "workers/worker.h"

namespace leadsync::testing {

std::string source_path(const std::string& relative) { return std::string(LEADSYNC_SOURCE_DIR) + "/" + relative; }

std::string unique_tag(const std::string& base) {
  std::string tag;
  for (const char c : base) tag += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
  std::random_device rd;
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "_%06x", rd() & 0xffffff);
  return tag.substr(0, 40) + suffix;
}

common::Config isolated_example_config(const std::string& tag, int partitions) {
  if (!std::getenv("LEADSYNC_KAFKA_BROKERS") || !std::getenv("LEADSYNC_PG_URL")) {
    throw std::runtime_error("integration tests need LEADSYNC_KAFKA_BROKERS and LEADSYNC_PG_URL (source .local/env)");
  }
  auto config = common::load_config(source_path("examples/leadsync.yaml"));
  config.kafka.topic = "t." + tag;
  config.kafka.dlq_topic = "t." + tag + ".dlq";
  config.kafka.group = "g." + tag;
  config.kafka.partitions = partitions;
  config.postgres.schema = "t_" + tag;
  for (auto& s : config.sources) s.name = s.name + "-" + tag;
  return config;
}

IsolatedEnvironment::IsolatedEnvironment(const common::Config& config) : config_(config) {
  auto conn = connect(config_);
  common::migrate(*conn, config_);
  common::create_topics(config_.kafka, common::leadsync_topics(config_.kafka));
}

IsolatedEnvironment::~IsolatedEnvironment() {
  try {
    auto conn = connect(config_);
    pqxx::work tx(*conn);
    tx.exec("DROP SCHEMA IF EXISTS " + conn->quote_name(config_.postgres.schema) + " CASCADE");
    tx.commit();
    std::vector<std::string> topics;
    for (const auto& t : common::leadsync_topics(config_.kafka)) topics.push_back(t.name);
    common::delete_topics(config_.kafka, topics);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cleanup failed: %s\n", e.what());
  }
}

WorkerThread::WorkerThread(const common::Config& config) : config_(config) {
  thread_ = std::thread([this] {
    try {
      workers::Worker worker(config_, telemetry_);
      worker.run(stop_);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "worker thread failed: " << e.what();
    }
  });
}

WorkerThread::~WorkerThread() { stop(); }

void WorkerThread::stop() {
  stop_.store(true);
  if (thread_.joinable()) thread_.join();
}

std::unique_ptr<pqxx::connection> connect(const common::Config& config) {
  return common::pg_connect(config.postgres.url, "leadsync-tests");
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (done()) return true;
    if (std::chrono::steady_clock::now() > deadline) return done();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

int64_t accounted_events(pqxx::connection& conn, const std::string& run_id) {
  pqxx::work tx(conn);
  return tx.exec_params1(
               "SELECT coalesce(sum(inserted + updated + deleted + unchanged + stale + failed), 0) "
               "FROM leadsync.run_apply_stats WHERE run_id = $1",
               run_id)[0]
      .as<int64_t>();
}

}  // namespace leadsync::testing
