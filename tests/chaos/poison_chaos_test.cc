// R13/R6 under chaos (issue 7, "Done when"): a 200,000-row sync applied by two leadsync-worker
// PROCESSES that are killed with SIGKILL again and again (and restarted), while PostgreSQL and the
// Kafka broker are each restarted once in the middle of the run, and 1% of the rows are poison that
// fails in the DATABASE stage: a CHECK constraint on the test's target table rejects every key whose
// number is a multiple of 100, so those rows map and validate fine and their INSERT fails with
// 23514, permanently. At the end the table equals the source exactly for every other row, every
// poison row is in the dead-letter topic with its reason (class permanent, stage database) and
// nothing else is there.
//
// PostgreSQL and the broker are restarted with dev/cluster (same ports, same data): the test runs
// against the local dev/test cluster of the source tree it was built from.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>
#include <set>
#include <sstream>

#include "bench/gen/lead_data.h"
#include "ctl/verify.h"
#include "tests/chaos/chaos_support.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kRows = 200'000;
constexpr int64_t kPoisonEvery = 100;  // L-0000100, L-0000200, ...: 1% of the rows
constexpr int64_t kPoison = kRows / kPoisonEvery;
constexpr int64_t kGood = kRows - kPoison;
constexpr uint64_t kSheetSeed = 17;
constexpr int kMaxBatch = 250;
constexpr const char* kConstraint = "chaos_poison_key";
// Chaos while the workers apply: a SIGKILL of one worker or the other every kKillEvery.
constexpr auto kKillEvery = 10s;
constexpr int kMaxKills = 6;
constexpr auto kRunTimeout = 200s;

// `dev/cluster ARGS` of this source tree; throws with its output when it fails.
void dev_cluster(const std::string& args) {
  const std::string out = "/tmp/leadsync-chaos-dev-cluster-" + std::to_string(::getpid()) + ".log";
  const auto command = std::string("'" LEADSYNC_SOURCE_DIR "/dev/cluster' ") + args + " >'" + out + "' 2>&1 </dev/null";
  if (std::system(command.c_str()) != 0) {
    std::ifstream in(out);
    std::stringstream text;
    text << in.rdbuf();
    throw std::runtime_error("'" + command + "' failed: " + text.str());
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Whatever happens in the test, the cluster is left running.
struct ClusterUpOnExit {
  ~ClusterUpOnExit() {
    try {
      dev_cluster("up");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "the local cluster could not be brought back: %s\n", e.what());
    }
  }
};

// One planned restart of a cluster component in the middle of the run.
struct Restart {
  const char* what;
  const char* component;  // dev/cluster's name for it
  int64_t at_rows;        // once the table holds this many rows
  std::chrono::seconds down_for;
};

bool is_poison(uint64_t number) { return number % kPoisonEvery == 0; }

class PoisonChaos : public ::testing::Test {
 protected:
  PoisonChaos() : config_(make_config(dir_)), env_(config_) {
    write_lead_sheet_file(source().url, kSheetSeed, kRows);
    write_text_file(config_path(), config_yaml(config_));
    // Each worker slot restarts under its own instance id (worker.instance_id), as a pod or a
    // systemd unit would: a killed worker takes back its partitions without a rebalance.
    for (const int slot : {0, 1}) {
      auto slot_config = config_;
      slot_config.worker.instance_id = "chaos-worker-" + std::to_string(slot);
      write_text_file(slot_config_path(slot), config_yaml(slot_config));
    }
  }

  void SetUp() override {
    // The restarts below go through dev/cluster of this tree: it must be the cluster the test uses.
    ASSERT_NO_THROW(dev_cluster("status")) << "the local cluster of " LEADSYNC_SOURCE_DIR " is not running";
    ports_ = read_file(LEADSYNC_SOURCE_DIR "/.local/ports");
    ASSERT_NE(ports_.find("KAFKA_PORT=" + config_.kafka.brokers.substr(config_.kafka.brokers.rfind(':') + 1) + "\n"),
              std::string::npos)
        << "the test's broker " << config_.kafka.brokers << " is not the one of dev/cluster:\n" << ports_;
    const auto reread = common::load_config(config_path());
    ASSERT_EQ(reread.kafka.topic, config_.kafka.topic);
    ASSERT_EQ(reread.postgres.schema, config_.postgres.schema);
    ASSERT_EQ(reread.worker.max_batch, kMaxBatch);
    // The poison: rows that the mapping accepts and the database refuses (SQLSTATE 23514).
    auto conn = connect(config_);
    pqxx::work tx(*conn);
    tx.exec("ALTER TABLE " + table(*conn) + " ADD CONSTRAINT " + kConstraint +
            " CHECK (right(lead_id, 2) <> '00')");
    tx.commit();
  }

  static common::Config make_config(const TempDir& dir) {
    auto config = isolated_example_config(unique_tag("r13_chaos"));
    config.sources.at(0).url = dir.file("leads.csv");
    config.worker.max_batch = kMaxBatch;
    return config;
  }

  const common::SourceConfig& source() const { return config_.sources.at(0); }
  std::string config_path() const { return dir_.file("leadsync.yaml"); }
  std::string slot_config_path(int slot) const { return dir_.file("worker-" + std::to_string(slot) + ".yaml"); }
  std::string table(pqxx::connection& conn) const { return common::qualified(conn, config_.postgres.schema, "leads"); }

  std::unique_ptr<ChildProcess> start_worker(int slot) {
    const auto log = dir_.file("worker-" + std::to_string(slot) + "-" + std::to_string(++workers_started_) + ".log");
    return start_worker_process(slot_config_path(slot), log);
  }

  // Live rows in the table, or -1 while PostgreSQL cannot be reached (a fresh connection each time:
  // the test restarts the database).
  int64_t table_rows() {
    try {
      auto conn = connect(config_);
      pqxx::work tx(*conn);
      return tx.exec1("SELECT count(*) FROM " + table(*conn))[0].as<int64_t>();
    } catch (const std::exception&) {
      return -1;
    }
  }

  int64_t dead_letters() {
    try {
      return sum(high_watermarks(config_.kafka, config_.kafka.dlq_topic, 5s));
    } catch (const std::exception&) {
      return -1;
    }
  }

  // kill -9 of one worker, restarted at once.
  void kill_and_restart(std::unique_ptr<ChildProcess>& worker, int slot) {
    worker->signal(SIGKILL);
    const auto status = worker->wait_exit(10s);
    ASSERT_TRUE(status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
        << "worker " << slot << " " << worker->describe() << "\n" << worker->log_tail();
    worker = start_worker(slot);
  }

  void restart(const std::string& component, std::chrono::seconds down_for) {
    dev_cluster("down " + component);
    std::this_thread::sleep_for(down_for);
    dev_cluster("up " + component);
    ASSERT_EQ(read_file(LEADSYNC_SOURCE_DIR "/.local/ports"), ports_)
        << component << " came back on other ports: the clients could not reconnect";
  }

  TempDir dir_;
  const common::Config config_;
  IsolatedEnvironment env_;
  std::string ports_;
  int workers_started_ = 0;
};

TEST_F(PoisonChaos,
       R13_TwoWorkersKilledRepeatedlyWithPostgresAndBrokerRestartsApplyEveryGoodRowAndDeadLetterEveryPoisonRow) {
  ClusterUpOnExit cluster_up;
  std::unique_ptr<ChildProcess> workers[2] = {start_worker(0), start_worker(1)};
  const auto started = std::chrono::steady_clock::now();
  auto sync = start_sync_run(config_, source());

  int kills = 0;
  // PostgreSQL once the table holds a quarter of the good rows, then the broker at half.
  const Restart restarts[] = {{"PostgreSQL", "pg", kGood / 4, 3s}, {"broker", "kafka", kGood / 2, 2s}};
  const Restart* next_restart = std::begin(restarts);
  auto next_kill = started + kKillEvery;
  int64_t rows = 0, dlq = 0;
  const auto done = [&] { return rows >= kGood && dlq >= kPoison; };
  const auto at = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count(); };
  while (std::chrono::steady_clock::now() - started < kRunTimeout) {
    rows = table_rows();
    dlq = dead_letters();
    if (done() && next_restart == std::end(restarts)) break;
    for (int slot = 0; slot < 2; ++slot) {
      ASSERT_TRUE(workers[slot]->running()) << "worker " << slot << " " << workers[slot]->describe() << "\n"
                                            << workers[slot]->log_tail();
    }
    if (next_restart != std::end(restarts) && rows >= next_restart->at_rows) {
      ASSERT_LT(rows, kGood) << "the " << next_restart->what << " restart came too late to be mid-run";
      std::printf("[          ] %5.1f s: %s restart at %lld rows, %lld dead letters\n", at(), next_restart->what,
                  static_cast<long long>(rows), static_cast<long long>(dlq));
      ASSERT_NO_FATAL_FAILURE(restart(next_restart->component, next_restart->down_for));
      ++next_restart;
      continue;
    }
    if (kills < kMaxKills && !done() && std::chrono::steady_clock::now() >= next_kill) {
      const int slot = kills % 2;
      std::printf("[          ] %5.1f s: SIGKILL %d of worker %d at %lld rows, %lld dead letters\n", at(),
                  kills + 1, slot, static_cast<long long>(rows), static_cast<long long>(dlq));
      ASSERT_NO_FATAL_FAILURE(kill_and_restart(workers[slot], slot));
      ++kills;
      next_kill = std::chrono::steady_clock::now() + kKillEvery;
    }
    std::this_thread::sleep_for(500ms);
  }
  const auto elapsed = at();
  std::printf("[          ] %.1f s: %lld rows, %lld dead letters, %d kills\n", elapsed, static_cast<long long>(rows),
              static_cast<long long>(dlq), kills);
  EXPECT_EQ(next_restart, std::end(restarts)) << "not every restart happened";
  EXPECT_GE(kills, 2) << "the workers were not killed repeatedly";

  ASSERT_EQ(sync.wait_for(30s), std::future_status::ready) << "the producer run did not finish";
  const auto run = sync.get();
  ASSERT_EQ(run.status, "completed") << run.message;
  ASSERT_EQ(run.events_published, static_cast<uint64_t>(kRows));
  ASSERT_TRUE(done()) << rows << " of " << kGood << " rows, " << dlq << " of " << kPoison
                      << " dead letters\nworker 0:\n" << workers[0]->log_tail() << "\nworker 1:\n"
                      << workers[1]->log_tail();

  // The table: exactly the source, field by field, for every row but the poison ones.
  const auto report = ctl::verify_source(config_, source());
  EXPECT_EQ(report.source_records, kRows);
  EXPECT_EQ(report.rejected_records, 0);
  EXPECT_EQ(report.matching, kGood) << ctl::format_report(report);
  EXPECT_EQ(report.missing_in_database, kPoison) << ctl::format_report(report);
  EXPECT_EQ(report.extra_in_database, 0) << ctl::format_report(report);
  EXPECT_TRUE(report.fields.empty()) << ctl::format_report(report);
  auto conn = connect(config_);
  pqxx::work tx(*conn);
  const auto leads = table(*conn);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + leads)[0].as<int64_t>(), kGood);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + leads + " WHERE _deleted")[0].as<int64_t>(), 0);
  const auto versions = tx.exec_params(
      "SELECT version, count(*) FROM leadsync.source_state WHERE source = $1 AND run_id = $2 GROUP BY version",
      source().name, run.run_id);
  ASSERT_EQ(versions.size(), 1u) << "one version per run";
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM " + leads + " WHERE _version = $1", versions[0][0].as<int64_t>())[0]
                .as<int64_t>(),
            kGood);
  tx.commit();

  // The dead-letter topic: every poison row with its reason, nothing else.
  std::set<std::string> expected;
  for (int64_t n = kPoisonEvery; n <= kRows; n += kPoisonEvery) {
    expected.insert("lead/" + bench::format_lead_id(static_cast<uint64_t>(n)));
  }
  // The watermarks count duplicates too: wait, bounded, until every poison key is there.
  std::vector<TopicRecord> records;
  eventually(
      [&] {
        records = read_topic(config_.kafka, config_.kafka.dlq_topic);
        std::set<std::string> keys;
        for (const auto& d : records) keys.insert(d.key);
        return std::includes(keys.begin(), keys.end(), expected.begin(), expected.end());
      },
      60s);
  std::map<std::string, int> dead;
  int wrong = 0;
  for (const auto& d : records) {
    ++dead[d.key];
    const auto id = bench::parse_lead_id(d.key.substr(d.key.find('/') + 1));
    const bool ok = expected.count(d.key) && id && is_poison(*id) &&
                    d.header("leadsync-error-class") == "permanent" && d.header("leadsync-error-stage") == "database" &&
                    d.header("leadsync-error").find(kConstraint) != std::string::npos &&
                    d.header("leadsync-original-topic") == config_.kafka.topic;
    if (!ok && ++wrong <= 10) {
      ADD_FAILURE() << "dead letter " << d.key << " (partition " << d.partition << ", offset " << d.offset
                    << "): class '" << d.header("leadsync-error-class") << "', stage '"
                    << d.header("leadsync-error-stage") << "', reason '" << d.header("leadsync-error") << "'";
    }
  }
  EXPECT_EQ(wrong, 0) << "dead letters that are not poison rows or lack their reason";
  int missing = 0, duplicated = 0;
  for (const auto& key : expected) {
    const auto it = dead.find(key);
    if (it == dead.end() && ++missing <= 10) ADD_FAILURE() << "poison row " << key << " is not in the DLQ";
    if (it != dead.end() && it->second > 1) ++duplicated;
  }
  EXPECT_EQ(missing, 0);
  // At-least-once: a crash between the dead-letter write and the offset commit writes it again.
  std::printf("[          ] %zu poison rows dead-lettered, %d of them more than once\n", dead.size(), duplicated);

  for (auto& worker : workers) stop_worker(*worker, 20s);
}

}  // namespace
}  // namespace leadsync::testing
