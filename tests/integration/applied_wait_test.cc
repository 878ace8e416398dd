// Issue 10 item 4 (R4): waiting on the workers' results for a run, joined by run id. `leadsyncctl
// wait SOURCE` waits for every recent run of the source whose events are not all applied, not only
// the latest; `leadsync-producer --once --wait` returns when its run's events are applied or
// dead-lettered, not when publishing is done. Real binaries, broker, PostgreSQL and worker.
#include <gtest/gtest.h>

#include <sstream>

#include "common/runs.h"
#include "tests/integration/cluster.h"

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

// Issue 10 "Done when": a 100,000-row run's counters — the producer's and the workers' applied
// counts joined by run id — equal an independent count of what changed in the table and its audit
// trail (one '*' row per insert, one row per changed field). Without a worker crash: replays after
// a crash are still counted twice (see the issue).
TEST_F(AppliedWait, R4_A100000RowRunsCountersEqualAnIndependentCountOfTheTableChanges) {
  constexpr int kRows = 100'000;
  WorkerThread worker(config_);
  write_text_file(config_.sources.at(0).url, sheet(kRows, ""));
  ASSERT_EQ(producer({"--once", "--wait", "--wait-timeout", "300"}).exit_code, 0);
  {
    const auto load = store_->list(source(), 1).at(0);
    pqxx::work tx(*conn_);
    const auto audit_inserts = tx.exec1("SELECT count(*) FROM leadsync.field_changes WHERE field = '*' AND source = " +
                                        tx.quote(source()))[0].as<int64_t>();
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
  ASSERT_EQ(producer({"--once", "--wait", "--wait-timeout", "300"}).exit_code, 0);
  const auto run = store_->list(source(), 1).at(0);

  const auto& e = config_.entity(config_.sources.at(0).entity);
  const auto table = conn_->quote_name(config_.postgres.schema) + "." + conn_->quote_name(e.table);
  pqxx::work tx(*conn_);
  const auto since = "(SELECT started_at FROM leadsync.sync_runs WHERE run_id = " + tx.quote(run.run_id) + ")";
  const auto inserts = tx.exec1("SELECT count(*) FROM leadsync.field_changes WHERE entity = " + tx.quote(e.name) +
                                " AND source = " + tx.quote(source()) + " AND field = '*' AND at >= " + since)[0].as<int64_t>();
  // A tombstone's audit rows name its fields too: the updated records are the live ones among them.
  const auto updated_keys =
      tx.exec1("SELECT count(DISTINCT f.key) FROM leadsync.field_changes f JOIN " + table + " t ON t." +
               conn_->quote_name(e.key) + " = f.key WHERE f.entity = " + tx.quote(e.name) +
               " AND f.source = " + tx.quote(source()) + " AND f.field <> '*' AND NOT t._deleted AND f.at >= " + since)[0].as<int64_t>();
  const auto tombstones = tx.exec1("SELECT count(*) FROM " + table + " WHERE _deleted")[0].as<int64_t>();
  const auto live = tx.exec1("SELECT count(*) FROM " + table + " WHERE NOT _deleted")[0].as<int64_t>();
  std::printf("run %s: new %lld changed %lld deleted %lld published %lld; applied inserted %lld updated %lld deleted %lld "
              "unchanged %lld stale %lld dead-lettered %lld; table: %lld '*' audit rows, %lld keys with changed fields, "
              "%lld tombstones, %lld live rows\n",
              run.run_id.c_str(), (long long)run.counters.new_records, (long long)run.counters.changed_records,
              (long long)run.counters.deleted_records, (long long)run.counters.events_published,
              (long long)run.applied.inserted, (long long)run.applied.updated, (long long)run.applied.deleted,
              (long long)run.applied.unchanged, (long long)run.applied.stale, (long long)run.applied.dead_lettered,
              (long long)inserts, (long long)updated_keys, (long long)tombstones, (long long)live);
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

}  // namespace
}  // namespace leadsync::testing
