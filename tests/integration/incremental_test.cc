// R9 — incremental sync through the real broker and database: a run publishes exactly the records
// that changed since the last run (checksum per record), a DELETE for exactly the keys that
// vanished, and nothing at all for an unchanged sheet, whether the snapshot hash short-circuits the
// run or the per-record checksums have to do the work. What is published is read back from Kafka
// itself (watermarks and messages), not from the producer's own report.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "bench/gen/lead_data.h"
#include "common/csv.h"
#include "common/mapping.h"
#include "ctl/verify.h"
#include "producers/sync_run.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kRows = 100'000;
constexpr uint64_t kSheetSeed = 9;
constexpr auto kApplyTimeout = 120s;

using Rows = std::map<std::string, std::vector<std::string>>;
using Keys = std::set<std::string>;

// The raw rows of a lead sheet by key (the generator writes clean ids).
Rows read_rows(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  common::CsvReader reader(in);
  common::CsvRecord record;
  std::optional<common::CsvError> error;
  Rows rows;
  bool header = true;
  while (reader.next(record, error)) {
    if (error) throw std::runtime_error(path + ": " + error->message);
    if (header) {
      header = false;
      continue;
    }
    rows.emplace(record.cells.at(bench::kLeadId), record.cells);
  }
  return rows;
}

// What a mutation did, found by comparing the two sheets cell by cell, independently of the
// generator's bookkeeping and of the producer's checksums.
struct SheetDiff {
  Keys added, changed, deleted;
};

SheetDiff diff_sheets(const Rows& before, const Rows& after) {
  SheetDiff d;
  for (const auto& [key, row] : before) {
    const auto it = after.find(key);
    if (it == after.end()) {
      d.deleted.insert(key);
    } else if (it->second != row) {
      d.changed.insert(key);
    }
  }
  for (const auto& [key, row] : after) {
    if (!before.count(key)) d.added.insert(key);
  }
  return d;
}

// The events of one run as Kafka has them, decoded.
struct Published {
  producers::RunReport report;
  int64_t messages = 0;  // growth of the main topic's high watermarks during the run
  std::vector<common::ChangeEvent> events;

  Keys keys(leadsync::v1::Op op) const {
    Keys out;
    for (const auto& e : events) {
      if (e.op() == op) out.insert(e.key());
    }
    return out;
  }
};

class IncrementalSync : public ::testing::Test {
 protected:
  IncrementalSync()
      : config_(make_config(dir_)),
        env_(config_),
        worker_(config_),
        kafka_(config_.kafka),
        runner_(config_, kafka_, nullptr),
        conn_(connect(config_)) {}

  // The first run loads the whole sheet; every test starts from there.
  void SetUp() override {
    {
      std::ofstream out(sheet(), std::ios::binary);
      bench::write_lead_sheet(out, kSheetSeed, kRows);
      ASSERT_TRUE(out.good());
    }
    Published first;
    ASSERT_NO_FATAL_FAILURE(sync(first));
    ASSERT_EQ(first.report.new_records, kRows);
    ASSERT_EQ(first.report.failed_records, 0u);
    ASSERT_EQ(first.messages, static_cast<int64_t>(kRows));
    ASSERT_NO_FATAL_FAILURE(expect_no_drift());
  }

  static common::Config make_config(const TempDir& dir) {
    // A short tag: the source name goes into run ids (see the report on new_run_id).
    auto config = isolated_example_config(unique_tag("r9_incr"));
    config.sources.at(0).url = dir.file("leads.csv");
    return config;
  }

  const common::SourceConfig& source() const { return config_.sources.at(0); }
  std::string sheet() const { return source().url; }

  // Runs the source once and reads back from the main topic what the run published; then waits
  // until the worker has accounted for every event.
  void sync(Published& out) {
    const auto before = high_watermarks(config_.kafka, config_.kafka.topic);
    out.report = runner_.run(source());
    ASSERT_EQ(out.report.status, "completed") << out.report.message;
    const auto after = high_watermarks(config_.kafka, config_.kafka.topic);
    out.messages = sum(after) - sum(before);
    for (const auto& m : read_messages(config_.kafka, config_.kafka.topic, before, after)) {
      common::ChangeEvent e;
      ASSERT_TRUE(e.ParseFromString(m.value)) << "undecodable message at partition " << m.partition << " offset "
                                              << m.offset;
      EXPECT_EQ(m.key, "lead/" + e.key());
      EXPECT_EQ(e.run_id(), out.report.run_id);
      out.events.push_back(std::move(e));
    }
    const auto published = static_cast<int64_t>(out.report.events_published);
    ASSERT_TRUE(eventually([&] { return accounted_events(*conn_, out.report.run_id) >= published; }, kApplyTimeout))
        << "the worker accounted for " << accounted_events(*conn_, out.report.run_id) << " of " << published
        << " events of run " << out.report.run_id;
  }

  // Rewrites the sheet in place with the generator's mutation; returns its counts and the diff.
  bench::MutationStats mutate(const bench::MutationOptions& options, SheetDiff& diff) {
    const auto before = read_rows(sheet());
    const auto next = sheet() + ".next";
    bench::MutationStats stats;
    {
      std::ifstream in(sheet(), std::ios::binary);
      std::ofstream out(next, std::ios::binary);
      stats = bench::mutate_sheet(in, out, options);
    }
    std::filesystem::rename(next, sheet());
    diff = diff_sheets(before, read_rows(sheet()));
    return stats;
  }

  void forget_snapshot_hash() {
    pqxx::work tx(*conn_);
    tx.exec_params("UPDATE leadsync.sync_runs SET snapshot_hash = NULL WHERE source = $1", source().name);
    tx.commit();
  }

  void expect_no_drift() {
    const auto report = ctl::verify_source(config_, source());
    EXPECT_FALSE(report.drift()) << ctl::format_report(report);
    EXPECT_EQ(report.rejected_records, 0);
  }

  Keys table_keys(const std::string& where) {
    pqxx::work tx(*conn_);
    Keys keys;
    for (const auto& r : tx.exec("SELECT lead_id FROM " + common::qualified(*conn_, config_.postgres.schema, "leads") +
                                 " WHERE " + where)) {
      keys.insert(r[0].as<std::string>());
    }
    return keys;
  }

  int64_t rows_with_version(int64_t version) {
    pqxx::work tx(*conn_);
    return tx
        .exec_params1("SELECT count(*) FROM " + common::qualified(*conn_, config_.postgres.schema, "leads") +
                          " WHERE _version = $1",
                      version)[0]
        .as<int64_t>();
  }

  // Declaration order is construction order: the sheet's directory and the config first, the
  // environment (schema, topics) before the worker that consumes them; destruction stops the
  // worker before the environment is dropped.
  TempDir dir_;
  const common::Config config_;
  IsolatedEnvironment env_;
  WorkerThread worker_;
  common::KafkaProducer kafka_;
  producers::SyncRunner runner_;
  std::unique_ptr<pqxx::connection> conn_;
};

TEST_F(IncrementalSync, R9_AnUnchangedSheetPublishesNoKafkaMessageEvenWithTheSnapshotHashForgotten) {
  const auto before = high_watermarks(config_.kafka, config_.kafka.topic);

  // Recognised by the snapshot hash alone.
  Published second;
  ASSERT_NO_FATAL_FAILURE(sync(second));
  EXPECT_TRUE(second.report.snapshot_unchanged);
  EXPECT_EQ(second.report.events_published, 0u);
  EXPECT_EQ(second.messages, 0);
  EXPECT_EQ(high_watermarks(config_.kafka, config_.kafka.topic), before);

  // The per-record checksums must find that nothing changed.
  forget_snapshot_hash();
  Published third;
  ASSERT_NO_FATAL_FAILURE(sync(third));
  EXPECT_FALSE(third.report.snapshot_unchanged);
  EXPECT_EQ(third.report.rows_read, kRows);
  EXPECT_EQ(third.report.unchanged_records, kRows);
  EXPECT_EQ(third.report.events_published, 0u);
  EXPECT_EQ(third.messages, 0);
  EXPECT_EQ(high_watermarks(config_.kafka, config_.kafka.topic), before);
  expect_no_drift();
}

TEST_F(IncrementalSync, R9_ChangingOnePercentOfRowsPublishesExactlyTheChangedRecords) {
  SheetDiff diff;
  const auto stats = mutate({.seed = 21, .change_fraction = 0.01}, diff);
  ASSERT_GT(stats.changed, kRows / 200) << "the mutation should change about 1% of the rows";
  ASSERT_EQ(diff.changed.size(), stats.changed);
  ASSERT_TRUE(diff.deleted.empty());
  ASSERT_TRUE(diff.added.empty());

  Published run;
  ASSERT_NO_FATAL_FAILURE(sync(run));
  EXPECT_EQ(run.report.changed_records, stats.changed);
  EXPECT_EQ(run.report.unchanged_records, kRows - stats.changed);
  EXPECT_EQ(run.report.new_records, 0u);
  EXPECT_EQ(run.report.deleted_records, 0u);
  EXPECT_EQ(run.report.events_published, stats.changed);
  EXPECT_EQ(run.messages, static_cast<int64_t>(stats.changed));
  ASSERT_EQ(run.events.size(), stats.changed);
  EXPECT_EQ(run.keys(leadsync::v1::OP_UPSERT), diff.changed);
  EXPECT_TRUE(run.keys(leadsync::v1::OP_DELETE).empty());

  expect_no_drift();
  // Exactly the changed rows carry the run's version; the others kept the first run's.
  EXPECT_EQ(rows_with_version(run.events.front().source_version()), static_cast<int64_t>(stats.changed));
  EXPECT_TRUE(table_keys("_deleted").empty());
}

TEST_F(IncrementalSync, R9_DeletingRowsPublishesExactlyOneDeletePerVanishedKey) {
  SheetDiff diff;
  const auto stats = mutate({.seed = 33, .change_fraction = 0, .delete_fraction = 0.005}, diff);
  ASSERT_GT(stats.deleted, kRows / 400);
  ASSERT_EQ(diff.deleted.size(), stats.deleted);
  ASSERT_TRUE(diff.changed.empty());
  ASSERT_TRUE(diff.added.empty());

  Published run;
  ASSERT_NO_FATAL_FAILURE(sync(run));
  EXPECT_EQ(run.report.deleted_records, stats.deleted);
  EXPECT_EQ(run.report.unchanged_records, kRows - stats.deleted);
  EXPECT_EQ(run.report.changed_records, 0u);
  EXPECT_EQ(run.report.new_records, 0u);
  EXPECT_EQ(run.report.events_published, stats.deleted);
  EXPECT_EQ(run.messages, static_cast<int64_t>(stats.deleted));
  ASSERT_EQ(run.events.size(), stats.deleted);
  EXPECT_EQ(run.keys(leadsync::v1::OP_DELETE), diff.deleted);
  EXPECT_TRUE(run.keys(leadsync::v1::OP_UPSERT).empty());

  expect_no_drift();
  EXPECT_EQ(table_keys("_deleted"), diff.deleted);
  EXPECT_EQ(table_keys("NOT _deleted").size(), kRows - stats.deleted);

  // The deletes are remembered: the next run, checksums only, publishes nothing again.
  forget_snapshot_hash();
  Published again;
  ASSERT_NO_FATAL_FAILURE(sync(again));
  EXPECT_EQ(again.report.deleted_records, 0u);
  EXPECT_EQ(again.messages, 0);
}

TEST_F(IncrementalSync, R9_AMixedEditPublishesExactlyItsChangesAdditionsAndDeletions) {
  SheetDiff diff;
  const auto stats =
      mutate({.seed = 45, .change_fraction = 0.01, .delete_fraction = 0.005, .add_fraction = 0.002}, diff);
  ASSERT_EQ(diff.changed.size(), stats.changed);
  ASSERT_EQ(diff.deleted.size(), stats.deleted);
  ASSERT_EQ(diff.added.size(), stats.added);
  ASSERT_GT(stats.added, 0u);

  Published run;
  ASSERT_NO_FATAL_FAILURE(sync(run));
  EXPECT_EQ(run.report.new_records, stats.added);
  EXPECT_EQ(run.report.changed_records, stats.changed);
  EXPECT_EQ(run.report.deleted_records, stats.deleted);
  const auto expected = stats.added + stats.changed + stats.deleted;
  EXPECT_EQ(run.report.events_published, expected);
  EXPECT_EQ(run.messages, static_cast<int64_t>(expected));
  ASSERT_EQ(run.events.size(), expected);
  Keys upserts = diff.changed;
  upserts.insert(diff.added.begin(), diff.added.end());
  EXPECT_EQ(run.keys(leadsync::v1::OP_UPSERT), upserts);
  EXPECT_EQ(run.keys(leadsync::v1::OP_DELETE), diff.deleted);

  expect_no_drift();
  EXPECT_EQ(table_keys("_deleted"), diff.deleted);
  EXPECT_EQ(table_keys("NOT _deleted").size(), stats.rows_out);
}

}  // namespace
}  // namespace leadsync::testing
