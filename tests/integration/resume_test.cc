// Issue 10 item 3 (R3, R4): a run interrupted after its checkpoint is continued, not restarted —
// the next run calls the adapter's resume() instead of open(), reads only what follows the
// checkpoint, does not take the keys read before it for deleted ones, and leaves the same state
// and the same target table as an uninterrupted run. Real broker, PostgreSQL and worker; the CSV
// adapter as the resumable source, wrapped to interrupt it and to see which entry it was given.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "producers/registry.h"
#include "producers/sync_run.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunStatus;

constexpr int kRows = 20'000;
const char* kHeader = "Lead ID,First name,Last name,Email,Phone,Company,Status,Assignee,Lead sources,Score,"
                      "Created at,Updated at,Notes\n";

std::string lead_id(int i) {
  char id[16];
  std::snprintf(id, sizeof id, "L-%07d", i);
  return id;
}

// The sheet after the edits: rows 100-199 and 15000-15099 changed, 300-309 and 19991-20000
// removed, 20001-20050 added. The early edits fall before the interrupted run's checkpoint, the
// late ones after it.
bool changed(int i) { return (i >= 100 && i < 200) || (i >= 15000 && i < 15100); }
bool removed(int i) { return (i >= 300 && i < 310) || i > kRows - 10; }

std::string sheet(bool edited) {
  std::string s = kHeader;
  for (int i = 1; i <= kRows + (edited ? 50 : 0); ++i) {
    if (edited && i <= kRows && removed(i)) continue;
    s += lead_id(i) + ",Ann,Lee,ann" + std::to_string(i) + "@example.com,,,new,,web," + std::to_string(i) +
         ",2026-01-02 03:04:05,2026-01-02 03:04:05," + (edited && changed(i) ? "edited" : "") + "\n";
  }
  return s;
}

// The source's adapter, which can be made to fail after `fail_after` records (an interrupted read)
// and tells which entry the run used. It reads slowly enough for several checkpoints.
// Which entry the run used, kept outside the adapter: the runner owns the adapter and destroys it
// when the run ends.
struct Entries {
  bool opened = false, resumed = false;
};

class Interruptible : public producers::SourceAdapter {
 public:
  Interruptible(std::unique_ptr<producers::SourceAdapter> inner, std::size_t fail_after, Entries& entries)
      : inner_(std::move(inner)), fail_after_(fail_after), entries_(entries) {}
  std::string open() override {
    entries_.opened = true;
    return inner_->open();
  }
  bool resume(const producers::Checkpoint& from) override {
    entries_.resumed = inner_->resume(from);
    return entries_.resumed;
  }
  const std::vector<std::string>& columns() const override { return inner_->columns(); }
  std::vector<std::string> column_warnings() const override { return inner_->column_warnings(); }
  bool is_duplicate_column(const std::string& name) const override { return inner_->is_duplicate_column(name); }
  bool next(producers::SourceRecord& out, std::optional<std::string>& error) override {
    if (++records_ > fail_after_) throw std::runtime_error("the source connection broke (simulated)");
    if (records_ % 1000 == 0) std::this_thread::sleep_for(20ms);
    return inner_->next(out, error);
  }
  double progress() const override { return inner_->progress(); }
  std::optional<producers::Checkpoint> checkpoint() const override { return inner_->checkpoint(); }

 private:
  std::unique_ptr<producers::SourceAdapter> inner_;
  std::size_t fail_after_;
  std::size_t records_ = 0;
  Entries& entries_;
};

// One pipeline: its own topics, schema, source and worker.
struct Pipeline {
  explicit Pipeline(const std::string& tag) : config(make_config(dir, tag)), env(config), kafka(config.kafka) {
    EXPECT_TRUE(wait_for_topic_leaders(config));
  }
  static common::Config make_config(const TempDir& dir, const std::string& tag) {
    auto c = isolated_example_config(unique_tag(tag));
    c.sources.at(0).url = dir.file("leads.csv");
    return c;
  }
  common::SourceConfig& source() { return config.sources.at(0); }

  struct Outcome {
    producers::RunReport report;
    std::set<std::string> upserted, deleted;
    bool opened = false, resumed = false;
  };
  Outcome run(std::size_t fail_after = SIZE_MAX) {
    const auto before = high_watermarks(config.kafka, config.kafka.topic);
    producers::RunOptions options;
    options.checkpoint_every = 100ms;
    producers::SyncRunner runner(config, kafka, nullptr, options);
    Entries entries;
    auto adapter = std::make_unique<Interruptible>(producers::make_adapter(source(), dir.path()), fail_after, entries);
    Outcome out;
    out.report = runner.run(source(), std::move(adapter));
    out.opened = entries.opened;
    out.resumed = entries.resumed;
    const auto after = high_watermarks(config.kafka, config.kafka.topic);
    for (const auto& m : read_messages(config.kafka, config.kafka.topic, before, after)) {
      common::ChangeEvent e;
      EXPECT_TRUE(e.ParseFromString(m.value));
      (e.op() == leadsync::v1::OP_DELETE ? out.deleted : out.upserted).insert(e.key());
    }
    return out;
  }

  // The target table as the sources see it: key, every field, the tombstone flag (not the versions
  // or times, which differ between runs by design).
  std::pair<int64_t, std::string> table_digest() {
    const auto& e = config.entity(source().entity);
    auto conn = connect(config);
    std::string cols = conn->quote_name(e.key);
    for (const auto& f : e.fields) cols += ", " + conn->quote_name(f.name);
    cols += ", _deleted";
    pqxx::work tx(*conn);
    const auto r = tx.exec1("SELECT count(*), coalesce(md5(string_agg(ROW(" + cols + ")::text, E'\\n' ORDER BY " +
                            conn->quote_name(e.key) + ")), '') FROM " + conn->quote_name(config.postgres.schema) +
                            "." + conn->quote_name(e.table));
    return {r[0].as<int64_t>(), r[1].as<std::string>()};
  }

  TempDir dir;
  common::Config config;
  IsolatedEnvironment env;
  common::KafkaProducer kafka;
};

std::set<std::string> keys_where(bool (*pred)(int), int to) {
  std::set<std::string> out;
  for (int i = 1; i <= to; ++i) {
    if (pred(i)) out.insert(lead_id(i));
  }
  return out;
}

TEST(Resume, R4_ARunAfterAnInterruptedOneResumesFromItsCheckpointAndEndsWithTheSameDatabase) {
  Pipeline interrupted("resume"), straight("straight");
  WorkerThread w1(interrupted.config), w2(straight.config);
  for (auto* p : {&interrupted, &straight}) {
    write_text_file(p->source().url, sheet(false));
    const auto first = p->run();
    ASSERT_EQ(first.report.status, RunStatus::kCompleted) << first.report.message;
    ASSERT_EQ(first.upserted.size(), static_cast<std::size_t>(kRows));
    write_text_file(p->source().url, sheet(true));
  }
  // Applied before the edited runs: an empty target would read as a truncated one (a full publish).
  for (auto* p : {&interrupted, &straight}) {
    ASSERT_TRUE(eventually([&] { return p->table_digest().first == kRows; }, 60s));
  }

  // The edited sheet: read straight through by one pipeline, interrupted at record 12,000 in the other.
  const auto reference = straight.run();
  ASSERT_EQ(reference.report.status, RunStatus::kCompleted) << reference.report.message;
  const auto broken = interrupted.run(12'000);
  ASSERT_EQ(broken.report.status, RunStatus::kFailed);
  EXPECT_NE(broken.report.message.find("simulated"), std::string::npos) << broken.report.message;

  const auto resumed = interrupted.run();
  ASSERT_EQ(resumed.report.status, RunStatus::kCompleted) << resumed.report.message;
  EXPECT_EQ(resumed.report.resumed_from, broken.report.run_id);
  EXPECT_TRUE(resumed.resumed);
  EXPECT_FALSE(resumed.opened) << "a resumed run does not start the read again";
  const auto all_rows = reference.report.rows_read;
  std::printf("rows read: uninterrupted %llu; interrupted run %llu, resumed run %llu\n",
              static_cast<unsigned long long>(all_rows), static_cast<unsigned long long>(broken.report.rows_read),
              static_cast<unsigned long long>(resumed.report.rows_read));
  // Measurably fewer: at least the first checkpoints' rows are not read again...
  EXPECT_LT(resumed.report.rows_read, all_rows - 5'000);
  // ...and nothing after the last checkpoint is skipped.
  EXPECT_GE(resumed.report.rows_read, all_rows - 12'000);

  // Between them the two runs published what the uninterrupted one did: the changed and added
  // records, and deletes for exactly the removed keys — none for a key read before the checkpoint.
  std::set<std::string> upserted = broken.upserted, deleted = broken.deleted;
  upserted.insert(resumed.upserted.begin(), resumed.upserted.end());
  deleted.insert(resumed.deleted.begin(), resumed.deleted.end());
  EXPECT_EQ(upserted, reference.upserted);
  EXPECT_EQ(deleted, reference.deleted);
  EXPECT_EQ(deleted, keys_where(removed, kRows));
  EXPECT_EQ(reference.upserted.size(), 250u);

  // The stored state is the whole edited sheet's: a next run finds nothing to do.
  const auto again = interrupted.run();
  ASSERT_EQ(again.report.status, RunStatus::kCompleted) << again.report.message;
  EXPECT_TRUE(again.upserted.empty() && again.deleted.empty())
      << again.upserted.size() << " upserts, " << again.deleted.size() << " deletes";

  // And the target tables are the same (20,050 rows, 20 of them tombstones).
  std::pair<int64_t, std::string> a, b;
  EXPECT_TRUE(eventually(
      [&] {
        a = interrupted.table_digest();
        b = straight.table_digest();
        return a.first == kRows + 50 && a == b;
      },
      60s))
      << a.first << " rows " << a.second << " vs " << b.first << " rows " << b.second;
}

TEST(Resume, R4_AFileChangedSinceTheCheckpointIsReadFromTheStart) {
  Pipeline p("resume-fresh");
  write_text_file(p.source().url, sheet(false));
  const auto broken = p.run(12'000);
  ASSERT_EQ(broken.report.status, RunStatus::kFailed);
  // The file changes before the next run: the checkpoint's offsets mean nothing in it.
  write_text_file(p.source().url, sheet(true));
  const auto next = p.run();
  ASSERT_EQ(next.report.status, RunStatus::kCompleted) << next.report.message;
  EXPECT_TRUE(next.opened);
  EXPECT_FALSE(next.resumed);
  EXPECT_TRUE(next.report.resumed_from.empty()) << next.report.resumed_from;
  EXPECT_EQ(next.report.rows_read, static_cast<uint64_t>(kRows + 50 - 20));
}

}  // namespace
}  // namespace leadsync::testing
