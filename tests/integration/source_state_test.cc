// The producer's state load against PostgreSQL (issue 12, S2): SourceState::load streams the
// source's rows of leadsync.source_state as a binary COPY over a connection of its own, and
// StateLoad runs it in a thread while the run goes on. Keys that a text format would escape and
// checksums across the whole bigint range come back exactly; other sources' rows stay out.
#include <gtest/gtest.h>

#include <limits>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "producers/source_state.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using producers::SourceState;
using producers::StateLoad;

class SourceStateLoad : public ::testing::Test {
 protected:
  SourceStateLoad() : config_(isolated_example_config(unique_tag("r9_state"))), conn_(connect(config_)) {}

  ~SourceStateLoad() override {
    pqxx::work tx(*conn_);
    tx.exec_params("DELETE FROM leadsync.source_state WHERE source = $1 OR source = $2", source(), other());
    tx.commit();
  }

  std::string source() const { return config_.sources.at(0).name; }
  std::string other() const { return source() + "-other"; }

  void store(const std::string& source, const std::vector<std::pair<std::string, int64_t>>& rows) {
    pqxx::work tx(*conn_);
    for (const auto& [key, checksum] : rows) {
      tx.exec_params("INSERT INTO leadsync.source_state (source, key, checksum, version, run_id) "
                     "VALUES ($1, $2, $3, 1, 'test')",
                     source, key, checksum);
    }
    tx.commit();
  }

  common::Config config_;
  std::unique_ptr<pqxx::connection> conn_;
};

// PostgreSQL's text cannot hold NUL; everything else a sheet's key cell can.
std::vector<std::pair<std::string, int64_t>> awkward_rows() {
  return {
      {"plain", 1},
      {"comma, and \"quotes\" and 'single'", -1},
      {"back\\slash \\N \\. \\\\", std::numeric_limits<int64_t>::min()},
      {"new\nline\r\nand\ttab", std::numeric_limits<int64_t>::max()},
      {"Ünïcödé — 日本語 😀", -1234567890123456789},
      {"", 7},
      {std::string(100'000, 'k'), -7},
  };
}

void expect_loaded(SourceState& state, const std::vector<std::pair<std::string, int64_t>>& rows) {
  ASSERT_EQ(state.known(), rows.size());
  std::size_t line = 2;
  for (const auto& [key, checksum] : rows) {
    std::size_t first = 0;
    EXPECT_EQ(state.observe(key, static_cast<uint64_t>(checksum), line++, first), SourceState::Seen::kUnchanged)
        << "key of " << key.size() << " bytes";
  }
  EXPECT_TRUE(state.vanished().empty());
}

TEST_F(SourceStateLoad, R9_TheStreamedLoadReadsEveryKeyAndChecksumOfTheSourceExactly) {
  const auto rows = awkward_rows();
  store(source(), rows);
  store(other(), {{"plain", 2}, {"only in the other source", 3}});
  SourceState state;
  state.load(config_.postgres.url, source());
  expect_loaded(state, rows);
  std::size_t first = 0;
  EXPECT_EQ(state.observe("only in the other source", 3, 100, first), SourceState::Seen::kNew);
}

TEST_F(SourceStateLoad, R9_ManyKeysLoadInTheBackgroundAndTheChangedAndVanishedOnesAreFound) {
  // 120,000 keys: many COPY messages, the table grows past its first sizes while keys wait for
  // their index slot; checksums alternate in sign.
  std::vector<std::pair<std::string, int64_t>> rows;
  {
    pqxx::work tx(*conn_);
    tx.exec_params("INSERT INTO leadsync.source_state (source, key, checksum, version, run_id) "
                   "SELECT $1, 'L-' || i, CASE WHEN i % 2 = 0 THEN -i ELSE i END::bigint * 1000003, 1, 'test' "
                   "FROM generate_series(1, 120000) AS i",
                   source());
    tx.commit();
  }
  SourceState state;
  {
    StateLoad loading(state, config_.postgres.url, source());
    EXPECT_GE(loading.wait(), 0.0);
  }
  ASSERT_EQ(state.known(), 120'000u);
  std::size_t first = 0, unchanged = 0;
  for (int64_t i = 1; i <= 120'000; ++i) {
    if (i % 1000 == 0) continue;  // vanished
    const int64_t checksum = (i % 2 == 0 ? -i : i) * 1000003 + (i % 100 == 0 ? 1 : 0);  // changed
    const auto seen = state.observe("L-" + std::to_string(i), static_cast<uint64_t>(checksum), 1 + i, first);
    if (i % 100 == 0) {
      EXPECT_EQ(seen, SourceState::Seen::kChanged) << i;
    } else {
      ASSERT_EQ(seen, SourceState::Seen::kUnchanged) << i;
      ++unchanged;
    }
  }
  EXPECT_EQ(unchanged, 120'000u - 1'200u);
  EXPECT_EQ(state.vanished().size(), 120u);
}

TEST_F(SourceStateLoad, R9_ASourceWithoutStoredKeysLoadsNone) {
  store(other(), {{"a", 1}});
  SourceState state;
  StateLoad loading(state, config_.postgres.url, source());
  loading.wait();
  EXPECT_EQ(state.known(), 0u);
  EXPECT_TRUE(state.vanished().empty());
}

TEST_F(SourceStateLoad, R9_ALoadThatCannotReachPostgreSQLFailsWhenWaitedFor) {
  SourceState state;
  StateLoad loading(state, "postgresql://leadsync@127.0.0.1:1/leadsync", source());
  EXPECT_THROW(loading.wait(), std::runtime_error);
}

TEST_F(SourceStateLoad, R9_ALoadNotWaitedForEndsWithItsOwnerAndLeavesNoConnection) {
  {
    pqxx::work tx(*conn_);
    tx.exec_params("INSERT INTO leadsync.source_state (source, key, checksum, version, run_id) "
                   "SELECT $1, 'L-' || i, i, 1, 'test' FROM generate_series(1, 200000) AS i",
                   source());
    tx.commit();
  }
  SourceState state;
  { StateLoad loading(state, config_.postgres.url, source()); }  // a run that ended early (snapshot unchanged)
  EXPECT_TRUE(eventually(
      [&] {
        pqxx::work tx(*conn_);
        return tx.exec_params1("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY (SELECT key, checksum "
                               "FROM leadsync.source_state WHERE source = ' || quote_literal($1) || '%'",
                               source())[0]
                   .as<int>() == 0;
      },
      std::chrono::seconds(10)));
}

// Written ahead (StateWriteAhead): what a run upserts while it reads counts only with the
// transaction that completes it; a run that does not complete leaves the stored state as it was.
class StateWrittenAhead : public SourceStateLoad {
 protected:
  // 5,000 keys observed, 2,000 of them handed out in two writes ahead, then one removed that was
  // written ahead (an incremental read's delete) and one that was not.
  void observe_and_write_ahead(SourceState& state, producers::StateWriteAhead& ahead) {
    std::size_t first = 0;
    for (int i = 0; i < 5'000; ++i) {
      state.observe("k" + std::to_string(i), static_cast<uint64_t>(-int64_t{i}), 2 + i, first);
      if (i == 999 || i == 1'999) {
        std::string keys, checksums;
        EXPECT_EQ(state.take_unwritten(keys, checksums), 1'000u);
        ahead.write(std::move(keys), std::move(checksums));
      }
    }
    EXPECT_EQ(state.unwritten(), 3'000u);
    state.remove("k10", 6'000);
    state.remove("k4000", 6'001);
    EXPECT_EQ(state.unwritten(), 2'999u);
  }

  std::map<std::string, int64_t> stored() {
    pqxx::work tx(*conn_);
    std::map<std::string, int64_t> out;
    for (const auto& r : tx.exec_params("SELECT key, checksum FROM leadsync.source_state WHERE source = $1", source())) {
      out[r[0].as<std::string>()] = r[1].as<int64_t>();
    }
    return out;
  }

  // The write-ahead says it failed; the run's end then writes the whole state on its own connection.
  void expect_the_run_writes_everything_itself(producers::StateWriteAhead& ahead, SourceState& state) {
    std::string why;
    EXPECT_EQ(ahead.finish(why), nullptr);
    EXPECT_FALSE(why.empty());
    state.unwrite_all();
    pqxx::work tx(*conn_);
    state.write(tx, source(), 7, "run-ahead");
    tx.commit();
    expect_stored_after_completion();
  }
  void expect_stored_after_completion() {
    const auto rows = stored();
    EXPECT_EQ(rows.size(), 4'998u);
    EXPECT_EQ(rows.count("k10"), 0u);
    EXPECT_EQ(rows.count("k4000"), 0u);
    for (int i = 0; i < 5'000; ++i) {
      if (i == 10 || i == 4'000) continue;
      const auto it = rows.find("k" + std::to_string(i));
      ASSERT_NE(it, rows.end()) << i;
      EXPECT_EQ(it->second, -int64_t{i});
    }
  }
};

TEST_F(StateWrittenAhead, R9_ChecksumsWrittenAheadCountWithTheRestOfTheStateInTheTransactionThatCompletesTheRun) {
  SourceState state;
  producers::StateWriteAhead ahead(config_.postgres.url, source(), 7, "run-ahead");
  observe_and_write_ahead(state, ahead);
  std::string why;
  auto* tx = ahead.finish(why);
  ASSERT_NE(tx, nullptr) << why;
  EXPECT_TRUE(stored().empty()) << "visible before the run's transaction committed";
  state.write(*tx, source(), 7, "run-ahead");
  tx->commit();
  expect_stored_after_completion();
}

TEST_F(StateWrittenAhead, R9_ARunThatDoesNotCompleteLeavesNothingOfWhatItWroteAhead) {
  store(source(), {{"k1", 99}});
  {
    SourceState state;
    producers::StateWriteAhead ahead(config_.postgres.url, source(), 7, "run-ahead");
    observe_and_write_ahead(state, ahead);
    std::string why;
    ASSERT_NE(ahead.finish(why), nullptr) << why;
  }  // the run failed or was cancelled: never committed
  const auto rows = stored();
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows.at("k1"), 99);
}

TEST_F(StateWrittenAhead, R9_WhenTheWritesAheadFailTheRunWritesEverythingItself) {
  SourceState state;
  producers::StateWriteAhead ahead("postgresql://leadsync@127.0.0.1:1/leadsync", source(), 7, "run-ahead");
  observe_and_write_ahead(state, ahead);
  expect_the_run_writes_everything_itself(ahead, state);
}

TEST_F(StateWrittenAhead, R13_AWriteAheadConnectionLostWhileTheReadGoesOnLeavesTheStateToTheRunsOwnWrite) {
  SourceState state;
  producers::StateWriteAhead ahead(config_.postgres.url, source(), 7, "run-ahead");
  observe_and_write_ahead(state, ahead);
  // The writes ahead are done; PostgreSQL loses the connection while it idles in its transaction.
  ASSERT_TRUE(eventually(
      [&] {
        pqxx::work tx(*conn_);
        return tx.exec("SELECT count(*) FROM pg_stat_activity WHERE state = 'idle in transaction' AND "
                       "query LIKE 'INSERT INTO leadsync.source_state%'")[0][0]
                   .as<int>() == 1;
      },
      std::chrono::seconds(10)));
  {
    pqxx::work tx(*conn_);
    tx.exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle in transaction' AND "
            "query LIKE 'INSERT INTO leadsync.source_state%'");
    tx.commit();
  }
  expect_the_run_writes_everything_itself(ahead, state);
}

}  // namespace
}  // namespace leadsync::testing
