// R6 — field-level counters as metrics (ctl/field_metrics.h, served by `leadsyncctl exporter`): a
// lead sheet is synced by the producer and a worker, then edited in known fields with one rejected
// cell; the counters must say exactly, per entity and field, what was applied, changed and rejected —
// the same numbers `leadsyncctl status --fields` prints for the run — and must not go back when the
// retention cleanup deletes the audit rows they were counted from.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <array>
#include <fstream>
#include <map>

#include "bench/gen/lead_data.h"
#include "common/csv.h"
#include "common/metric_names.h"
#include "ctl/field_counts.h"
#include "ctl/field_metrics.h"
#include "ctl/retention.h"
#include "producers/sync_run.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kRows = 40;
constexpr uint64_t kSeed = 13;

class FieldMetricsTest : public ::testing::Test {
 protected:
  // The audit (leadsync.field_changes) is shared by every test on the cluster and labelled by entity:
  // this test's entity carries its tag so that parallel tests' changes are not counted here.
  static common::Config make_config(const TempDir& dir) {
    const auto tag = unique_tag("r6_field_metrics");
    auto config = isolated_example_config(tag);
    auto node = config.entities.extract("lead");
    node.key() = "lead_" + tag;
    node.mapped().name = node.key();
    config.entities.insert(std::move(node));
    config.sources.at(0).entity = "lead_" + tag;
    config.sources.at(0).url = dir.file("leads.csv");
    return config;
  }
  void SetUp() override {
    write_sheet(rows_);
    ASSERT_NO_FATAL_FAILURE(sync());
  }
  const common::SourceConfig& source() const { return config_.sources.at(0); }
  const std::string& entity() const { return source().entity; }

  void write_sheet(const std::vector<std::vector<std::string>>& rows) const {
    std::ofstream out(source().url, std::ios::binary | std::ios::trunc);
    common::write_csv_row(out, bench::lead_header());
    for (const auto& r : rows) common::write_csv_row(out, r);
    ASSERT_TRUE(out.good());
  }
  static std::vector<std::vector<std::string>> sheet_rows() {
    std::vector<std::vector<std::string>> rows;
    for (int64_t i = 0; i < kRows; ++i) rows.push_back(bench::make_lead_row(kSeed, static_cast<uint64_t>(i)));
    return rows;
  }
  producers::RunReport sync() {
    const auto report = runner_.run(source());
    EXPECT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
    EXPECT_TRUE(eventually([&] { return accounted_events(*conn_, report.run_id) >= static_cast<int64_t>(report.events_published); }, 60s))
        << "the worker accounted for " << accounted_events(*conn_, report.run_id) << " of " << report.events_published;
    return report;
  }

  // Per field: {applied, changed, rejected} as the registry has them now.
  using Counts = std::map<std::string, std::array<double, 3>>;
  Counts counts() {
    Counts out;
    for (const auto& f : config_.entity(entity()).fields) out[f.name] = {0, 0, 0};
    for (const auto& family : registry_.Collect()) {
      const int which = family.name == metric::kFieldApplied   ? 0
                        : family.name == metric::kFieldChanged ? 1
                        : family.name == metric::kFieldRejected ? 2
                                                                : -1;
      if (which < 0) continue;
      for (const auto& m : family.metric) {
        std::string e, f;
        for (const auto& l : m.label) (l.name == "entity" ? e : f) = l.value;
        if (e != entity()) continue;
        EXPECT_TRUE(out.count(f)) << "a label outside the mapping: " << f;
        out[f][static_cast<std::size_t>(which)] = m.counter.value;
      }
    }
    return out;
  }
  // Samples until the counters reach `want` (a range is counted a sample after it was marked, once
  // the transactions then in progress have finished), then twice more: they must stay there.
  void expect_counts(const Counts& want) {
    eventually([&] {
      counter_.sample(*conn_);
      return counts() == want;
    }, 20s);
    counter_.sample(*conn_);
    counter_.sample(*conn_);
    const auto got = counts();
    for (const auto& [field, w] : want) {
      EXPECT_EQ(got.at(field)[0], w[0]) << field << " applied";
      EXPECT_EQ(got.at(field)[1], w[1]) << field << " changed";
      EXPECT_EQ(got.at(field)[2], w[2]) << field << " rejected";
    }
  }
  int64_t count(const std::string& sql) {
    pqxx::work tx(*conn_);
    return tx.exec_params1(sql, source().name, entity())[0].as<int64_t>();
  }

  TempDir dir_;
  const common::Config config_ = make_config(dir_);
  IsolatedEnvironment env_{config_};
  WorkerThread worker_{config_};
  common::KafkaProducer kafka_{config_.kafka};
  producers::SyncRunner runner_{config_, kafka_, nullptr};
  std::unique_ptr<pqxx::connection> conn_ = connect(config_);
  std::vector<std::vector<std::string>> rows_ = sheet_rows();
  prometheus::Registry registry_;
  ctl::FieldMetrics metrics_{registry_};
  ctl::FieldCounter counter_{config_, metrics_};
};

TEST_F(FieldMetricsTest, R6_FieldCountersSayPerFieldWhatWasAppliedChangedAndRejectedAndNeverGoBack) {
  counter_.sample(*conn_);  // counting starts here, after the first sync
  Counts want;
  for (const auto& f : config_.entity(entity()).fields) want[f.name] = {0, 0, 0};
  ASSERT_NO_FATAL_FAILURE(expect_counts(want));

  rows_.at(1)[bench::kNotes] += " (edited)";
  rows_.at(2)[bench::kNotes] += " (edited)";
  rows_.at(2)[bench::kStatus] = rows_.at(2)[bench::kStatus] == "won" ? "lost" : "won";
  rows_.at(7)[bench::kScore] = "not a number";
  write_sheet(rows_);
  const auto run = sync();
  ASSERT_EQ(run.changed_records, 2u);
  for (auto& [field, w] : want) w = {2, field == "notes" ? 2.0 : field == "status" ? 1.0 : 0.0, field == "score" ? 1.0 : 0.0};
  ASSERT_NO_FATAL_FAILURE(expect_counts(want));

  // The same numbers as `status --fields` for that run.
  {
    common::RunStore store(*conn_, common::kDefaultHeartbeatInterval);
    const auto stored = store.get(run.run_id);
    ASSERT_TRUE(stored.has_value());
    pqxx::work tx(*conn_);
    for (const auto& c : ctl::field_counts(tx, config_, source(), run.run_id, stored->applied)) {
      EXPECT_EQ(static_cast<double>(c.applied), want.at(c.field)[0]) << c.field;
      EXPECT_EQ(static_cast<double>(c.changed), want.at(c.field)[1]) << c.field;
      EXPECT_EQ(static_cast<double>(c.rejected), want.at(c.field)[2]) << c.field;
    }
  }

  // The retention cleanup deletes the rows the counters were read from: they stay where they are.
  {
    pqxx::work tx(*conn_);
    const std::string old = "now() - interval '3000 days'";
    tx.exec_params("UPDATE leadsync.record_changes SET at = " + old + " WHERE entity = $1", entity());
    tx.exec_params("UPDATE leadsync.run_errors SET at = " + old + " WHERE source = $1", source().name);
    tx.exec_params("UPDATE leadsync.run_apply_stats SET at = " + old +
                       " WHERE run_id IN (SELECT run_id FROM leadsync.sync_runs WHERE source = $1)",
                   source().name);
    tx.commit();
  }
  ctl::Retention retention;
  retention.field_changes_days = retention.run_history_days = retention.backups_days = 2900;  // only those rows
  ctl::cleanup(config_, retention, ctl::CleanupMode::kDelete);
  ASSERT_EQ(count("SELECT count(*) FROM leadsync.field_changes WHERE $1 <> '' AND entity = $2"), 0);
  ASSERT_EQ(count("SELECT count(*) FROM leadsync.run_errors WHERE source = $1 AND $2 <> ''"), 0);
  ASSERT_NO_FATAL_FAILURE(expect_counts(want));

  // And count on from there: one more email change, the bad cell rejected again by the next run.
  rows_.at(3)[bench::kEmail] = "changed." + rows_.at(3)[bench::kEmail];
  write_sheet(rows_);
  ASSERT_EQ(sync().changed_records, 1u);
  for (auto& [field, w] : want) {
    w[0] += 1;
    if (field == "email") w[1] += 1;
    if (field == "score") w[2] += 1;
  }
  ASSERT_NO_FATAL_FAILURE(expect_counts(want));
}

// An id is not a commit order: a transaction can take a lower id and commit after another took a
// higher one. Reading "id > last seen" would skip the late row for good; the counter waits for it.
TEST_F(FieldMetricsTest, R6_AnAuditRowCommittedAfterAHigherOneIsCountedOnceItCommits) {
  counter_.sample(*conn_);
  auto late_conn = connect(config_);
  pqxx::work late(*late_conn);
  late.exec_params("INSERT INTO leadsync.record_changes (entity, key, changes) "
                   R"(VALUES ($1, 'k1', '{{notes, a, b}}'))",
                   entity());
  {
    pqxx::work tx(*conn_);
    tx.exec_params("INSERT INTO leadsync.record_changes (entity, key, changes) "
                   R"(VALUES ($1, 'k2', '{{phone, a, b}}'))",
                   entity());
    tx.commit();
  }
  for (int i = 0; i < 4; ++i) counter_.sample(*conn_);
  // Nothing is counted past the open transaction's id yet.
  EXPECT_EQ(counts().at("phone")[1], 0);
  EXPECT_EQ(counts().at("notes")[1], 0);
  late.commit();
  Counts want;
  for (const auto& f : config_.entity(entity()).fields) {
    want[f.name] = {0, f.name == "notes" || f.name == "phone" ? 1.0 : 0.0, 0};
  }
  ASSERT_NO_FATAL_FAILURE(expect_counts(want));
}

// R6 — `status --fields` finds a run's audit rows through the run index, a BRIN bloom index
// (migration 13; on leadsync.record_changes since migration 14) (issue 12: cheaper per audit row than a B-tree): once the block ranges are
// summarized, and with sequential scans off so that the lookup must go through the index, the
// counts stay exact.
TEST_F(FieldMetricsTest, R6_StatusFieldsFindsARunsAuditRowsThroughTheBrinBloomRunIndex) {
  {
    pqxx::work tx(*conn_);
    const auto def = tx.exec1("SELECT indexdef FROM pg_indexes WHERE schemaname = 'leadsync' AND "
                              "indexname = 'record_changes_run'")[0].as<std::string>();
    EXPECT_NE(def.find("USING brin"), std::string::npos) << def;
    EXPECT_NE(def.find("text_bloom_ops"), std::string::npos) << def;
  }
  rows_.at(4)[bench::kNotes] += " (edited)";
  rows_.at(5)[bench::kNotes] += " (edited)";
  rows_.at(5)[bench::kAssignee] = "someone.else@example.com";
  write_sheet(rows_);
  const auto run = sync();
  ASSERT_EQ(run.changed_records, 2u);
  common::RunStore store(*conn_, common::kDefaultHeartbeatInterval);
  const auto stored = store.get(run.run_id);
  ASSERT_TRUE(stored.has_value());
  pqxx::work tx(*conn_);
  tx.exec("SELECT brin_summarize_new_values('leadsync.record_changes_run')");
  tx.exec("SET LOCAL enable_seqscan = off");
  const auto plan = tx.exec_params("EXPLAIN SELECT field, count(*) FROM leadsync.field_changes WHERE run_id = $1 "
                                   "GROUP BY field", run.run_id);
  std::string text;
  for (const auto& r : plan) text += r[0].as<std::string>() + "\n";
  EXPECT_NE(text.find("record_changes_run"), std::string::npos) << text;
  for (const auto& c : ctl::field_counts(tx, config_, source(), run.run_id, stored->applied)) {
    const int64_t want = c.field == "notes" ? 2 : c.field == "assignee" ? 1 : 0;
    EXPECT_EQ(c.changed, want) << c.field;
  }
}

}  // namespace
}  // namespace leadsync::testing
