// Issue 10 item 4 (R4): waiting on the workers' results for a run, joined by run id. `leadsyncctl
// wait SOURCE` waits for every recent run of the source whose events are not all applied, not only
// the latest; `leadsync-producer --once --wait` returns when its run's events are applied or
// dead-lettered, not when publishing is done. A run is `completed` only then (published_at marks
// the end of publishing), and a batch a worker reads again after a crash is not counted twice.
// Real binaries, broker, PostgreSQL and worker.
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <sys/wait.h>

#include <csignal>
#include <cstdlib>
#include <sstream>
#include <thread>

#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/runs.h"
#include "tests/integration/cluster.h"
#include "workers/metrics.h"
#include "workers/targets/postgres_target.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

std::string sheet(int rows, const std::string& note) { return lead_sheet(rows, note); }

class AppliedWait : public ExecutablesTest {
 protected:
  void SetUp() override { start("wait"); }
  CommandResult producer(const std::vector<std::string>& args) {
    return run("/producers/leadsync-producer", args, std::chrono::seconds(180));
  }
  CommandResult ctl(const std::vector<std::string>& args) { return run("/ctl/leadsyncctl", args, std::chrono::seconds(180)); }

  struct Published {
    bool running = false, published = false, finished = false;
    std::string message;
  };
  Published published(const std::string& run_id) {
    pqxx::work tx(*conn_);
    const auto r = tx.exec_params1(
        "SELECT status = 'running', published_at IS NOT NULL, finished_at IS NOT NULL AND finished_at >= "
        "coalesce(published_at, finished_at), coalesce(message, '') FROM leadsync.sync_runs WHERE run_id = $1",
        run_id);
    return {r[0].as<bool>(), r[1].as<bool>(), r[2].as<bool>(), r[3].as<std::string>()};
  }

  // One producer run (--once) and the workers applying it, until `leadsyncctl wait` says every run
  // of the source is completed; the run. With `crash_after` > 0 the run is applied first by a
  // leadsync-worker process that is killed (SIGKILL) right after the database commit of its
  // crash_after-th batch, before that batch's Kafka offsets are stored or committed; a worker
  // started after the kill reads those batches again.
  common::RunInfo sync_once(int crash_after) {
    std::unique_ptr<ChildProcess> crashing;
    if (crash_after > 0) {
      worker_.reset();
      ::setenv("LEADSYNC_TEST_CRASH_AFTER_BATCHES", std::to_string(crash_after).c_str(), 1);
      crashing = std::make_unique<ChildProcess>(
          std::vector<std::string>{std::string(LEADSYNC_BINARY_DIR) + "/workers/leadsync-worker", "--config",
                                   dir_.file("leadsync.yaml")},
          dir_.file("crashing-worker-" + std::to_string(++crashes_) + ".log"));
      ::unsetenv("LEADSYNC_TEST_CRASH_AFTER_BATCHES");
    } else if (!worker_) {
      worker_ = std::make_unique<WorkerThread>(config_);
    }
    const auto produced = producer({"--once"});
    EXPECT_EQ(produced.exit_code, 0) << produced.output;
    if (crashing) {
      const auto status = crashing->wait_exit(std::chrono::seconds(180));
      EXPECT_TRUE(status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL)
          << "the worker was not killed by its test hook: " << crashing->describe() << "\n" << crashing->log_tail();
      worker_ = std::make_unique<WorkerThread>(config_);
    }
    const auto waited = ctl({"wait", source(), "--timeout", "300"});
    EXPECT_EQ(waited.exit_code, 0) << waited.output;
    return store_->list(source(), 1).at(0);
  }

  // Issue 10 "Done when": a 100,000-row run's counters — the producer's and the workers' applied
  // counts joined by run id — equal an independent count of what changed in the table and its audit
  // trail (the creation on each row, one audit row per changed field).
  void expect_counters_equal_an_independent_count(int crash_after_load, int crash_after_edit);

  std::unique_ptr<WorkerThread> worker_;
  int crashes_ = 0;
};

TEST_F(AppliedWait, R4_WaitWaitsForAnEarlierRunWhoseEventsAreStillBeingApplied) {
  write_text_file(config_.sources.at(0).url, sheet(20'000, ""));
  ASSERT_EQ(producer({"--once"}).exit_code, 0);
  const auto first = store_->list(source(), 1).at(0);
  ASSERT_EQ(first.counters.events_published, 20'000);
  // A second run finds nothing new: the latest run is done and owes nothing. (A row in the target,
  // so that the empty table does not read as a truncated one, which would publish everything again.)
  {
    const auto& e = config_.entity(config_.sources.at(0).entity);
    pqxx::work tx(*conn_);
    tx.exec("INSERT INTO " + conn_->quote_name(config_.postgres.schema) + "." + conn_->quote_name(e.table) + " (" +
            conn_->quote_name(e.key) + ", _version) VALUES ('placeholder', 1)");
    tx.commit();
  }
  ASSERT_EQ(producer({"--once"}).exit_code, 0);
  ASSERT_EQ(store_->list(source(), 1).at(0).counters.events_published, 0);

  // No worker yet: the first run's events are all still waiting.
  const auto early = ctl({"wait", source(), "--timeout", "3"});
  EXPECT_EQ(early.exit_code, 1) << early.output;
  EXPECT_NE(early.output.find(first.run_id), std::string::npos) << early.output;

  WorkerThread worker(config_);
  const auto waited = ctl({"wait", source(), "--timeout", "120"});
  EXPECT_EQ(waited.exit_code, 0) << waited.output;
  EXPECT_GE(store_->get(first.run_id)->applied.total(), 20'000) << "wait returned before the first run was applied";
}

TEST_F(AppliedWait, R4_OnceWaitReturnsWhenTheWorkersAppliedTheRun) {
  write_text_file(config_.sources.at(0).url, sheet(20'000, ""));
  // Without a worker the run is published but never applied: --wait gives up and says so.
  const auto unapplied = producer({"--once", "--wait", "--wait-timeout", "3"});
  EXPECT_EQ(unapplied.exit_code, 1) << unapplied.output;
  EXPECT_NE(unapplied.output.find("0 of 20000 events applied"), std::string::npos) << unapplied.output;

  WorkerThread worker(config_);
  write_text_file(config_.sources.at(0).url, sheet(20'000, "edited"));
  const auto applied = producer({"--once", "--wait", "--wait-timeout", "120"});
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  const auto run = store_->list(source(), 1).at(0);
  EXPECT_EQ(run.counters.events_published, 20'000);
  EXPECT_GE(run.applied.total(), 20'000) << "--once --wait returned before its run was applied";
}

void AppliedWait::expect_counters_equal_an_independent_count(int crash_after_load, int crash_after_edit) {
  constexpr int kRows = 100'000;
  write_text_file(config_.sources.at(0).url, sheet(kRows, ""));
  {
    const auto load = sync_once(crash_after_load);
    const auto& e = config_.entity(config_.sources.at(0).entity);
    pqxx::work tx(*conn_);
    const auto audit_inserts =
        tx.exec1("SELECT count(*) FROM " + conn_->quote_name(config_.postgres.schema) + "." +
                 conn_->quote_name(e.table) + " WHERE _created_run = " + tx.quote(load.run_id))[0].as<int64_t>();
    std::printf("load run %s: %s; new %lld published %lld; applied inserted %lld stale %lld total %lld; "
                "%lld rows created by the run\n",
                load.run_id.c_str(), common::run_status_name(load.status), (long long)load.counters.new_records,
                (long long)load.counters.events_published, (long long)load.applied.inserted,
                (long long)load.applied.stale, (long long)load.applied.total(), (long long)audit_inserts);
    EXPECT_EQ(load.status, common::RunStatus::kCompleted);
    EXPECT_EQ(load.counters.new_records, kRows);
    EXPECT_EQ(load.applied.inserted, audit_inserts);
    EXPECT_EQ(load.applied.total(), kRows);
  }
  // The edit: 1,000 rows changed, 500 removed, 700 added.
  std::string edited = sheet(kRows + 700, "");
  {
    std::string out, line;
    std::istringstream in(edited);
    int n = -1;
    while (std::getline(in, line)) {
      ++n;
      if (n >= 1 && n <= 500) continue;                                   // removed
      if (n > 50'000 && n <= 51'000) line += "edited";                     // changed (Notes is the last column)
      out += line + "\n";
    }
    edited = out;
  }
  write_text_file(config_.sources.at(0).url, edited);
  const auto run = sync_once(crash_after_edit);

  const auto& e = config_.entity(config_.sources.at(0).entity);
  const auto table = conn_->quote_name(config_.postgres.schema) + "." + conn_->quote_name(e.table);
  pqxx::work tx(*conn_);
  const auto since = "(SELECT started_at FROM leadsync.sync_runs WHERE run_id = " + tx.quote(run.run_id) + ")";
  const auto inserts =
      tx.exec1("SELECT count(*) FROM " + table + " WHERE _created_run = " + tx.quote(run.run_id))[0].as<int64_t>();
  // A tombstone's audit rows name its fields too: the updated records are the live ones among them.
  const auto updated_keys =
      tx.exec1("SELECT count(DISTINCT f.key) FROM leadsync.field_changes f JOIN " + table + " t ON t." +
               conn_->quote_name(e.key) + " = f.key WHERE f.entity = " + tx.quote(e.name) +
               " AND f.source = " + tx.quote(source()) + " AND f.field <> '*' AND NOT t._deleted AND f.at >= " + since)[0].as<int64_t>();
  const auto tombstones = tx.exec1("SELECT count(*) FROM " + table + " WHERE _deleted")[0].as<int64_t>();
  const auto live = tx.exec1("SELECT count(*) FROM " + table + " WHERE NOT _deleted")[0].as<int64_t>();
  std::printf("run %s: %s; new %lld changed %lld deleted %lld published %lld; applied inserted %lld updated %lld "
              "deleted %lld unchanged %lld stale %lld dead-lettered %lld; table: %lld rows created by the run, %lld keys with "
              "changed fields, %lld tombstones, %lld live rows\n",
              run.run_id.c_str(), common::run_status_name(run.status), (long long)run.counters.new_records,
              (long long)run.counters.changed_records, (long long)run.counters.deleted_records,
              (long long)run.counters.events_published, (long long)run.applied.inserted,
              (long long)run.applied.updated, (long long)run.applied.deleted, (long long)run.applied.unchanged,
              (long long)run.applied.stale, (long long)run.applied.dead_lettered, (long long)inserts,
              (long long)updated_keys, (long long)tombstones, (long long)live);
  EXPECT_EQ(run.status, common::RunStatus::kCompleted);
  EXPECT_EQ(run.counters.new_records, 700);
  EXPECT_EQ(run.counters.changed_records, 1000);
  EXPECT_EQ(run.counters.deleted_records, 500);
  EXPECT_EQ(run.counters.events_published, 2200);
  EXPECT_EQ(run.applied.inserted, inserts);
  EXPECT_EQ(run.applied.updated, updated_keys);
  EXPECT_EQ(run.applied.deleted, tombstones);
  EXPECT_EQ(run.applied.inserted, run.counters.new_records);
  EXPECT_EQ(run.applied.updated, run.counters.changed_records);
  EXPECT_EQ(run.applied.deleted, run.counters.deleted_records);
  EXPECT_EQ(run.applied.total(), run.counters.events_published);
  EXPECT_EQ(live, kRows + 700 - 500);
}

TEST_F(AppliedWait, R4_A100000RowRunsCountersEqualAnIndependentCountOfTheTableChanges) {
  expect_counters_equal_an_independent_count(0, 0);
}

// The same after a worker crash mid-run, in both runs: killed right after a batch's database
// commit and before its offsets were committed, the batch is read again by the next worker and
// skipped (leadsync.applied_offsets), so no event is counted twice.
TEST_F(AppliedWait, R4_A100000RowRunsCountersEqualAnIndependentCountAfterAWorkerCrashMidRun) {
  expect_counters_equal_an_independent_count(5, 1);
}

// A run is `completed` only when its events are applied: publishing done (published_at), it stays
// `running` while no worker applies it — the stale-heartbeat reaper leaves it alone, and the next
// run of the source starts meanwhile and compares against it — and a worker completes both.
TEST_F(AppliedWait, R4_APublishedRunStaysRunningUntilAWorkerAppliesItAndTheNextRunStartsMeanwhile) {
  write_text_file(config_.sources.at(0).url, sheet(5'000, ""));
  const auto first_out = producer({"--once"});
  ASSERT_EQ(first_out.exit_code, 0) << first_out.output;
  const auto first = store_->list(source(), 1).at(0);
  ASSERT_EQ(first.counters.events_published, 5'000);
  // Longer than 3 heartbeat intervals: a run still publishing would now be reaped as stale.
  std::this_thread::sleep_for(config_.runs.heartbeat_interval * 3 + std::chrono::seconds(1));
  const auto waiting = store_->get(first.run_id);
  ASSERT_TRUE(waiting);
  EXPECT_EQ(waiting->status, common::RunStatus::kRunning) << waiting->error;
  EXPECT_TRUE(waiting->finished_at.empty());
  auto p = published(first.run_id);
  EXPECT_TRUE(p.running && p.published && !p.finished);
  EXPECT_EQ(p.message.rfind(common::kApplyingMessage, 0), 0u) << p.message;

  // The next run starts while the first is applied: it reads against the first (only the 100
  // edited rows are new events, not all 5,000 again). (A row in the target, so that the empty
  // table does not read as a truncated one, which would publish everything again.)
  {
    const auto& e = config_.entity(config_.sources.at(0).entity);
    pqxx::work tx(*conn_);
    tx.exec("INSERT INTO " + conn_->quote_name(config_.postgres.schema) + "." + conn_->quote_name(e.table) + " (" +
            conn_->quote_name(e.key) + ", _version) VALUES ('placeholder', 1)");
    tx.commit();
  }
  std::string edited;
  {
    std::istringstream in(sheet(5'000, ""));
    std::string line;
    for (int n = 0; std::getline(in, line); ++n) edited += line + (n >= 1 && n <= 100 ? "edited" : "") + "\n";
  }
  write_text_file(config_.sources.at(0).url, edited);
  const auto second_out = producer({"--once"});
  ASSERT_EQ(second_out.exit_code, 0) << second_out.output;
  const auto second = store_->list(source(), 1).at(0);
  ASSERT_NE(second.run_id, first.run_id);
  EXPECT_EQ(second.counters.changed_records, 100);
  EXPECT_EQ(second.counters.events_published, 100);
  EXPECT_TRUE(published(second.run_id).running);
  EXPECT_TRUE(published(first.run_id).running);

  WorkerThread worker(config_);
  const auto waited = ctl({"wait", source(), "--timeout", "120"});
  EXPECT_EQ(waited.exit_code, 0) << waited.output;
  for (const auto& id : {first.run_id, second.run_id}) {
    const auto done = store_->get(id);
    ASSERT_TRUE(done);
    EXPECT_EQ(done->status, common::RunStatus::kCompleted) << id;
    EXPECT_FALSE(done->finished_at.empty()) << id;
    EXPECT_EQ(done->applied.total(), done->counters.events_published) << id;
    p = published(id);
    EXPECT_TRUE(!p.running && p.published && p.finished) << id;
    EXPECT_EQ(p.message.find(common::kApplyingMessage), std::string::npos) << p.message;
  }
}

// ...but a published run whose events are never all applied does not stay open for ever: once no
// event of it was applied for the apply-wait timeout (an hour; here a second), it is failed, naming
// how many events are missing.
TEST_F(AppliedWait, R4_APublishedRunWithoutAppliedEventsFailsAfterTheApplyWaitTimeoutNamingTheMissingEvents) {
  write_text_file(config_.sources.at(0).url, sheet(300, ""));
  const auto out = producer({"--once"});
  ASSERT_EQ(out.exit_code, 0) << out.output;
  const auto run = store_->list(source(), 1).at(0);
  EXPECT_EQ(run.status, common::RunStatus::kRunning);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  EXPECT_EQ(store_->get(run.run_id)->status, common::RunStatus::kRunning) << "failed before its timeout (an hour)";
  store_->set_apply_wait_timeout(std::chrono::seconds(1));
  const auto failed = store_->get(run.run_id);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, common::RunStatus::kFailed);
  EXPECT_NE(failed->error.find("300 of 300 events were never applied or dead-lettered"), std::string::npos)
      << failed->error;
  EXPECT_FALSE(failed->finished_at.empty());
  EXPECT_FALSE(failed->published_at.empty()) << "its publishing did finish";
}

// A batch read again (a worker that committed its transaction died before committing the Kafka
// offsets; or a partition's new owner after a rebalance) is skipped by the apply target: neither
// applied nor counted. The same Kafka messages, read twice, through PostgresTarget::apply.
TEST_F(AppliedWait, R4_ABatchReadAgainAfterItsCommitIsSkippedAndNotCountedTwice) {
  common::KafkaProducer kafka(config_.kafka);
  const std::string run_id = "replay-" + source();  // unique: run_apply_stats outlives the test
  const auto& entity = config_.entity(config_.sources.at(0).entity);
  for (int i = 0; i < 12; ++i) {
    const auto key = "L-" + std::to_string(1000 + i);
    std::map<std::string, common::Value> fields;
    for (const auto& f : entity.fields) fields[f.name] = null();
    fields["email"] = text(key + "@example.com");
    produce_event(kafka, config_.kafka, change_event(source(), entity.name, key, v1::OP_UPSERT, 100 + i, fields, run_id));
  }
  ASSERT_TRUE(kafka.flush(std::chrono::seconds(30)));
  prometheus::Registry registry;
  workers::WorkerMetrics metrics(registry);
  workers::PostgresTarget target(config_, metrics);
  ASSERT_TRUE(target.connect());
  // Each read: a consumer of its own group, from the start of the topic, as a worker after a crash.
  std::vector<std::unique_ptr<common::KafkaConsumer>> consumers;  // outlive the messages read from them
  auto read = [&](std::size_t n) {
    consumers.push_back(std::make_unique<common::KafkaConsumer>(
        config_.kafka, config_.kafka.group + "-reader-" + std::to_string(consumers.size())));
    consumers.back()->subscribe({config_.kafka.topic});
    std::vector<workers::Record> batch;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (batch.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto msg = consumers.back()->consume(200);
      if (!msg || msg->err() != RdKafka::ERR_NO_ERROR) continue;
      workers::Record r;
      EXPECT_TRUE(r.event->ParseFromArray(msg->payload(), static_cast<int>(msg->len())));
      r.message = std::move(msg);
      batch.push_back(std::move(r));
    }
    EXPECT_EQ(batch.size(), n);
    return batch;
  };
  auto apply = [&](std::vector<workers::Record>& batch) {
    std::vector<workers::Record*> records;
    for (auto& r : batch) records.push_back(&r);
    workers::ApplyCounts total;
    for (const auto& [run, c] : target.apply(records)) total += c;
    target.settle({}, {});
    return total;
  };
  auto counted = [&] {
    pqxx::work tx(*conn_);
    return tx.exec_params1("SELECT coalesce(sum(inserted + updated + deleted + unchanged + stale + failed), 0) "
                           "FROM leadsync.run_apply_stats WHERE run_id = $1",
                           run_id)[0].as<int64_t>();
  };

  auto first = read(7);  // the first 7 read, per partition a prefix
  EXPECT_EQ(apply(first).inserted, 7);
  EXPECT_EQ(counted(), 7);
  auto again = read(12);  // the same 7 again, and 5 more
  const auto second = apply(again);
  EXPECT_EQ(second.inserted, 5);
  EXPECT_EQ(second.total(), 5) << "records applied before were applied (and counted) again";
  EXPECT_EQ(counted(), 12);
  auto third = read(12);
  EXPECT_EQ(apply(third).total(), 0);
  EXPECT_EQ(counted(), 12);
  for (const auto& r : third) EXPECT_FALSE(r.failure) << "a skipped record must not be forwarded";
}

}  // namespace
}  // namespace leadsync::testing
