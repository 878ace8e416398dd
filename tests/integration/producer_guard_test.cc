// The producer never deletes or completes on a broken read (issue 7, items 13, 14, 16, 18): the
// mass-delete guardrail, runs that always end, state bound to its target, and no secrets in
// sync_runs. Real broker and PostgreSQL; a worker only where the target table matters.
#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "producers/sync_run.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunStatus;

constexpr int kRows = 100;
const char* kHeader = "Lead ID,First name,Last name,Email,Phone,Company,Status,Assignee,Lead sources,Score,"
                      "Created at,Updated at,Notes\n";

std::string row(int i, const std::string& notes = "") {
  char id[16];
  std::snprintf(id, sizeof id, "L-%07d", i);
  return std::string(id) + ",Ann,Lee,ann" + std::to_string(i) + "@example.com,,,new,,web," + std::to_string(i) +
         ",2026-01-02 03:04:05,2026-01-02 03:04:05," + notes + "\n";
}

std::string sheet_of(int from, int to) {
  std::string s = kHeader;
  for (int i = from; i <= to; ++i) s += row(i);
  return s;
}

class ProducerGuard : public ::testing::Test {
 protected:
  ProducerGuard() : config_(make_config(dir_)), env_(config_), kafka_(config_.kafka), conn_(connect(config_)) {}

  // Fresh topics answer "not leader" until their partitions have leaders.
  void SetUp() override {
    ASSERT_TRUE(eventually(
        [&] {
          try {
            high_watermarks(config_.kafka, config_.kafka.topic, 2s);
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        30s));
  }

  static common::Config make_config(const TempDir& dir) {
    auto config = isolated_example_config(unique_tag("guard"));
    config.sources.at(0).url = dir.file("leads.csv");
    return config;
  }
  common::SourceConfig& source() { return config_.sources.at(0); }

  struct Outcome {
    producers::RunReport report;
    int64_t upserts = 0;
    int64_t deletes = 0;
  };

  Outcome run(const std::string& sheet, producers::RunOptions options = {}) {
    write_text_file(source().url, sheet);
    const auto before = high_watermarks(config_.kafka, config_.kafka.topic);
    producers::SyncRunner runner(config_, kafka_, nullptr, options);
    Outcome out;
    out.report = runner.run(source());
    const auto after = high_watermarks(config_.kafka, config_.kafka.topic);
    for (const auto& m : read_messages(config_.kafka, config_.kafka.topic, before, after)) {
      common::ChangeEvent e;
      EXPECT_TRUE(e.ParseFromString(m.value));
      (e.op() == leadsync::v1::OP_DELETE ? out.deletes : out.upserts) += 1;
    }
    return out;
  }

  // The run's row in leadsync.sync_runs: status and message.
  std::pair<std::string, std::string> stored(const std::string& run_id) {
    pqxx::work tx(*conn_);
    const auto r = tx.exec_params1("SELECT status, coalesce(message, '') FROM leadsync.sync_runs WHERE run_id = $1",
                                   run_id);
    return {r[0].as<std::string>(), r[1].as<std::string>()};
  }

  // Whether the run's publishing finished (its state stored, published_at set).
  bool publishing_done(const std::string& run_id) {
    pqxx::work tx(*conn_);
    return tx.exec_params1("SELECT published_at IS NOT NULL FROM leadsync.sync_runs WHERE run_id = $1", run_id)[0]
        .as<bool>();
  }

  int64_t stored_state() {
    pqxx::work tx(*conn_);
    return tx.exec_params1("SELECT count(*) FROM leadsync.source_state WHERE source = $1", source().name)[0]
        .as<int64_t>();
  }

  void load_all() {
    const auto first = run(sheet_of(1, kRows));
    ASSERT_EQ(first.report.status, RunStatus::kCompleted) << first.report.message;
    ASSERT_EQ(first.upserts, kRows);
  }

  TempDir dir_;
  common::Config config_;
  IsolatedEnvironment env_;
  common::KafkaProducer kafka_;
  std::unique_ptr<pqxx::connection> conn_;
};

TEST_F(ProducerGuard, R13_ASheetCutToATenthIsRefusedInsteadOfDeletingTheRest) {
  ASSERT_NO_FATAL_FAILURE(load_all());
  const auto cut = run(sheet_of(1, 10));
  EXPECT_EQ(cut.report.status, RunStatus::kFailed);
  EXPECT_NE(cut.report.message.find("max_delete_fraction"), std::string::npos) << cut.report.message;
  EXPECT_EQ(cut.deletes, 0);
  EXPECT_EQ(stored(cut.report.run_id).first, "failed");
  EXPECT_EQ(stored_state(), kRows) << "the refused run must not advance the state";
}

TEST_F(ProducerGuard, R13_AMassDeleteRunsWhenTheFlagOrTheConfigAllowsIt) {
  ASSERT_NO_FATAL_FAILURE(load_all());
  const auto flagged = run(sheet_of(1, 50), {.mass_delete = producers::MassDelete::kAllowed});
  EXPECT_EQ(flagged.report.status, RunStatus::kCompleted) << flagged.report.message;
  EXPECT_EQ(flagged.deletes, 50);
  source().allow_mass_delete = true;
  const auto configured = run(sheet_of(1, 10));
  EXPECT_EQ(configured.report.status, RunStatus::kCompleted) << configured.report.message;
  EXPECT_EQ(configured.deletes, 40);
}

TEST_F(ProducerGuard, R13_AMassDeleteWithinTheConfiguredFractionRuns) {
  ASSERT_NO_FATAL_FAILURE(load_all());
  source().max_delete_fraction = 0.5;
  const auto half = run(sheet_of(1, 60));
  EXPECT_EQ(half.report.status, RunStatus::kCompleted) << half.report.message;
  EXPECT_EQ(half.deletes, 40);
}

TEST_F(ProducerGuard, R13_OnlyValidRowsCount_AHeaderAndOneJunkRowDeletesNothing) {
  ASSERT_NO_FATAL_FAILURE(load_all());
  source().max_delete_fraction = 1.0;  // the emptiness check, not the fraction, must catch it
  const auto junk = run(std::string(kHeader) + ",,,,,,,,,x,,,\n");
  EXPECT_EQ(junk.report.status, RunStatus::kFailed);
  EXPECT_EQ(junk.deletes, 0);
  EXPECT_NE(junk.report.message.find("no valid records"), std::string::npos) << junk.report.message;
}

TEST_F(ProducerGuard, R13_AFileThatEndsInsideAQuotedCellFailsTheRun) {
  ASSERT_NO_FATAL_FAILURE(load_all());
  // A stray quote in the third-last row swallows the last two rows into one cell: 2% of the
  // records would look deleted, well under max_delete_fraction.
  std::string sheet = kHeader;
  for (int i = 1; i <= kRows; ++i) sheet += row(i, i == kRows - 2 ? "\"stray" : "");
  const auto broken = run(sheet);
  EXPECT_EQ(broken.report.status, RunStatus::kFailed);
  EXPECT_EQ(broken.deletes, 0);
  EXPECT_NE(broken.report.message.find("ends inside a quoted cell"), std::string::npos) << broken.report.message;
}

TEST_F(ProducerGuard, R13_ARunWithParseErrorsPublishesNoDeletes) {
  ASSERT_NO_FATAL_FAILURE(load_all());
  std::string sheet = kHeader;
  for (int i = 1; i <= kRows - 5; ++i) sheet += row(i, i == 10 ? "says \"hi\" inline" : "");
  const auto run1 = run(sheet);
  EXPECT_EQ(run1.report.status, RunStatus::kCompleted) << run1.report.message;
  EXPECT_EQ(run1.report.failed_records, 1u);
  EXPECT_EQ(run1.deletes, 0) << "5 rows are gone, but a run that could not parse every row deletes nothing";
  EXPECT_NE(run1.report.message.find("no records were deleted"), std::string::npos) << run1.report.message;
  // Once the sheet parses again, the vanished rows are deleted.
  const auto run2 = run(sheet_of(1, kRows - 5));
  EXPECT_EQ(run2.report.status, RunStatus::kCompleted) << run2.report.message;
  EXPECT_EQ(run2.deletes, 5);
}

TEST_F(ProducerGuard, R14_ARejectedCellOfLongMultibyteTextStillEndsTheRun) {
  std::string euros;
  for (int i = 0; i < 50; ++i) euros += "€";  // 3 bytes each: the error text's cut falls inside one
  std::string sheet = sheet_of(1, 5);
  sheet += "L-0000006,Ann,Lee,ann6@example.com,,,new,,web," + euros + ",,,\n";
  const auto r = run(sheet);
  EXPECT_EQ(r.report.status, RunStatus::kCompleted) << r.report.message;
  EXPECT_EQ(r.report.failed_records, 1u);
  // Publishing done: with no worker here, the run waits `running` for its events to be applied.
  EXPECT_EQ(stored(r.report.run_id).first, "running");
  EXPECT_TRUE(publishing_done(r.report.run_id));
  pqxx::work tx(*conn_);
  const auto message =
      tx.exec_params1("SELECT message FROM leadsync.run_errors WHERE run_id = $1", r.report.run_id)[0].as<std::string>();
  EXPECT_NE(message.find("expects an integer"), std::string::npos) << message;
}

TEST_F(ProducerGuard, R14_TheFinalStatusIsWrittenEvenWhenStoringRowErrorsFails) {
  {
    pqxx::work tx(*conn_);
    tx.exec("ALTER TABLE leadsync.run_errors ADD CONSTRAINT " + conn_->quote_name("refuse_" + source().name) +
            " CHECK (source <> " + tx.quote(source().name) + ") NOT VALID");
    tx.commit();
  }
  std::string sheet = sheet_of(1, 5) + "L-0000006,Ann,Lee,ann6@example.com,,,new,,web,many,,,\n";
  const auto r = run(sheet);
  {
    pqxx::work tx(*conn_);
    tx.exec("ALTER TABLE leadsync.run_errors DROP CONSTRAINT " + conn_->quote_name("refuse_" + source().name));
    tx.commit();
  }
  const auto [status, message] = stored(r.report.run_id);
  EXPECT_EQ(status, "running") << message;  // publishing done; no worker here applies its events
  EXPECT_TRUE(publishing_done(r.report.run_id));
  EXPECT_NE(message.find("could not be stored"), std::string::npos) << message;
  // The source is free: the next run is not refused as "already running".
  const auto next = run(sheet_of(1, 5));
  EXPECT_EQ(next.report.status, RunStatus::kCompleted) << next.report.message;
}

TEST_F(ProducerGuard, R18_NoUserInfoOrTokenOfTheSourceUrlIsLoggedOrStored) {
  httplib::Server server;
  server.Get("/export", [](const httplib::Request&, httplib::Response& res) { res.status = 403; });
  const int port = server.bind_to_any_port("127.0.0.1");
  std::thread serving([&] { server.listen_after_bind(); });
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  source().url = "http://ann:hunter2@127.0.0.1:" + std::to_string(port) + "/export?gid=0&token=tok3n";
  producers::SyncRunner runner(config_, kafka_, nullptr);
  const auto report = runner.run(source());
  spdlog::set_default_logger(previous);
  server.stop();
  serving.join();
  EXPECT_EQ(report.status, RunStatus::kFailed);
  const auto [status, message] = stored(report.run_id);
  EXPECT_NE(message.find("HTTP 403"), std::string::npos) << message;
  for (const auto* secret : {"hunter2", "tok3n"}) {
    EXPECT_EQ(message.find(secret), std::string::npos) << message;
    EXPECT_EQ(report.message.find(secret), std::string::npos) << report.message;
    EXPECT_EQ(log.str().find(secret), std::string::npos) << log.str();
  }
}

TEST_F(ProducerGuard, R18_APostgresPasswordNeverReachesTheRunsMessage) {
  // libpq quotes a malformed URL token back in its error: the password must not travel with it.
  auto config = config_;
  config.postgres.url = "postgresql://leadsync:s3cr%zzet@127.0.0.1:1/leadsync";
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log)));
  producers::SyncRunner runner(config, kafka_, nullptr);
  const auto report = runner.run(config.sources.at(0));
  spdlog::set_default_logger(previous);
  EXPECT_EQ(report.status, RunStatus::kFailed);
  EXPECT_FALSE(report.message.empty());
  EXPECT_EQ(report.message.find("s3cr"), std::string::npos) << report.message;
  EXPECT_EQ(log.str().find("s3cr"), std::string::npos) << log.str();
}

// ------------------------------------------------------------------ state bound to its target

class TargetBinding : public ProducerGuard {
 protected:
  TargetBinding() : worker_(config_) {}

  int64_t live_rows() {
    pqxx::work tx(*conn_);
    return tx.exec1("SELECT count(*) FROM " + common::qualified(*conn_, config_.postgres.schema, "leads") +
                    " WHERE NOT _deleted")[0]
        .as<int64_t>();
  }
  void load_and_apply() {
    ASSERT_NO_FATAL_FAILURE(load_all());
    ASSERT_TRUE(eventually([&] { return live_rows() == kRows; }, 60s)) << live_rows();
  }

  WorkerThread worker_;
};

TEST_F(TargetBinding, R16_ATruncatedTargetGetsAFullPublish) {
  ASSERT_NO_FATAL_FAILURE(load_and_apply());
  {
    pqxx::work tx(*conn_);
    tx.exec("TRUNCATE " + common::qualified(*conn_, config_.postgres.schema, "leads"));
    tx.commit();
  }
  const auto again = run(sheet_of(1, kRows));
  EXPECT_EQ(again.report.status, RunStatus::kCompleted) << again.report.message;
  EXPECT_EQ(again.upserts, kRows);
  EXPECT_TRUE(eventually([&] { return live_rows() == kRows; }, 60s)) << live_rows();
}

TEST_F(TargetBinding, R16_FullIgnoresTheStoredState) {
  ASSERT_NO_FATAL_FAILURE(load_and_apply());
  const auto unchanged = run(sheet_of(1, kRows));
  EXPECT_EQ(unchanged.upserts, 0);
  const auto full = run(sheet_of(1, kRows), {.state = producers::StateUse::kFull});
  EXPECT_EQ(full.report.status, RunStatus::kCompleted) << full.report.message;
  EXPECT_EQ(full.upserts, kRows);
}

TEST_F(TargetBinding, R16_TheSnapshotHashCoversEveryFieldsCoerce) {
  ASSERT_NO_FATAL_FAILURE(load_and_apply());
  auto& entity = config_.entities.at("lead");
  for (auto& f : entity.fields) {
    if (f.name == "lead_sources") f.coerce = common::ListCoerce::kReject;
  }
  const auto recoerced = run(sheet_of(1, kRows));
  EXPECT_FALSE(recoerced.report.snapshot_unchanged) << "a changed coerce rule is new work";
}

}  // namespace
}  // namespace leadsync::testing
