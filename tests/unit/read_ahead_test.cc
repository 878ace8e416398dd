// The producer's read-ahead (issue 12): records read and mapped on several threads come back to the
// run in read order, with each batch's checkpoint at its last record; a read that fails delivers
// what came before the failure, then the failure; and the compact key table keeps every key apart.
#include <gtest/gtest.h>

#include <atomic>
#include <stdexcept>
#include <string>

#include "common/config.h"
#include "producers/key_table.h"
#include "producers/mapper.h"
#include "producers/read_ahead.h"

namespace leadsync::producers {
namespace {

const char* kConfig = R"(
entities:
  lead:
    table: leads
    key: lead_id
    fields:
      email: {type: text, normalize: lower_trim}
      employees: {type: int}
sources:
  - name: s
    kind: csv
    entity: lead
    url: /tmp/x.csv
    key_column: id
    columns: {id: lead_id, email: email, employees: employees}
)";

// Line n (from 2) holds key k<n % keys>, so keys repeat across batches when `keys` < rows; every
// 7th line is blank, every 11th unreadable, every 13th has no number in a number column.
class Generated : public SourceAdapter {
 public:
  Generated(std::size_t rows, std::size_t keys, std::size_t throw_at = 0)
      : rows_(rows), keys_(keys), throw_at_(throw_at) {}
  std::string open() override { return ""; }
  const std::vector<std::string>& columns() const override { return names_; }
  std::vector<std::string> column_warnings() const override { return {}; }
  bool is_duplicate_column(const std::string&) const override { return false; }
  bool next(SourceRecord& out, std::optional<std::string>& error) override {
    if (line_ > rows_ + 1) return false;
    const auto n = line_++;
    if (n == throw_at_) throw std::runtime_error("the download broke at line " + std::to_string(n));
    out.position = n;
    out.kind = CellKind::kText;
    error.reset();
    if (n % 7 == 0) {
      out.cells.assign(1, "");
    } else {
      out.cells = {"k" + std::to_string(n % keys_), "E" + std::to_string(n) + "@x.com",
                   n % 13 == 0 ? "many" : std::to_string(n)};
      if (n % 11 == 0) error = "line " + std::to_string(n) + ": unreadable";
    }
    return true;
  }
  double progress() const override { return static_cast<double>(line_) / static_cast<double>(rows_ + 2); }
  std::optional<Checkpoint> checkpoint() const override { return Checkpoint{"next:" + std::to_string(line_)}; }

 private:
  std::vector<std::string> names_{"id", "email", "employees"};
  std::size_t rows_, keys_, throw_at_;
  std::size_t line_ = 2;
};

struct Fixture {
  common::Config config = common::parse_config(kConfig);
  const common::SourceConfig& source = config.sources.at(0);
  Generated adapter;
  Mapper mapper;
  explicit Fixture(Generated a) : adapter(std::move(a)), mapper(source, config.entity(source.entity), adapter) {}
};

TEST(ReadAhead, R2_R9_RecordsComeBackInReadOrderWithTheirKindsLinesAndEachBatchsCheckpoint) {
  for (unsigned threads : {1u, 2u, 4u}) {
    Fixture f(Generated(5000, 1500));
    ReadAhead ahead(f.adapter, f.mapper, threads, 64, 4);
    std::size_t expected_line = 2;
    std::size_t batches = 0;
    while (auto* batch = ahead.next()) {
      ++batches;
      for (std::size_t i = 0; i < batch->count; ++i) {
        const auto& item = batch->items[i];
        const auto n = expected_line++;
        ASSERT_EQ(item.record.position, n) << "threads " << threads;
        if (n % 7 == 0) {
          EXPECT_EQ(item.kind, ReadItem::Kind::kBlank) << n;
        } else if (n % 11 == 0) {
          EXPECT_EQ(item.kind, ReadItem::Kind::kUnreadable) << n;
          EXPECT_EQ(*item.parse_error, "line " + std::to_string(n) + ": unreadable");
        } else if (n % 13 == 0) {
          ASSERT_EQ(item.kind, ReadItem::Kind::kRejected) << n;
          EXPECT_EQ(item.error.position, n);
          EXPECT_EQ(item.error.column, "employees");
          EXPECT_EQ(item.error.key, "k" + std::to_string(n % 1500));
        } else {
          ASSERT_EQ(item.kind, ReadItem::Kind::kMapped) << n;
          EXPECT_EQ(item.event.key(), "k" + std::to_string(n % 1500));
          EXPECT_EQ(item.event.fields().at("email").string_value(), "e" + std::to_string(n) + "@x.com");
          EXPECT_EQ(item.event.fields().at("employees").int_value(), static_cast<int64_t>(n));
        }
      }
      // The checkpoint names the line after the batch's last record.
      ASSERT_TRUE(batch->checkpoint);
      EXPECT_EQ(batch->checkpoint->value, "next:" + std::to_string(expected_line)) << "threads " << threads;
    }
    EXPECT_EQ(expected_line, 5002u) << "threads " << threads;
    EXPECT_GE(batches, 5000u / 64);
    EXPECT_EQ(ahead.next(), nullptr);
  }
}

TEST(ReadAhead, R13_AReadThatFailsDeliversTheRecordsBeforeTheFailureThenTheFailure) {
  Fixture f(Generated(5000, 5000, 1500));
  ReadAhead ahead(f.adapter, f.mapper, 2, 64, 4);
  std::size_t expected_line = 2;
  try {
    while (auto* batch = ahead.next()) {
      for (std::size_t i = 0; i < batch->count; ++i) ASSERT_EQ(batch->items[i].record.position, expected_line++);
    }
    FAIL() << "the read's failure was not rethrown";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "the download broke at line 1500");
  }
  EXPECT_EQ(expected_line, 1500u);
}

TEST(ReadAhead, R13_ARunThatStopsEarlyStopsTheReadersWithoutReadingToTheEnd) {
  Fixture f(Generated(1'000'000, 1000));
  {
    ReadAhead ahead(f.adapter, f.mapper, 2, 64, 4);
    ASSERT_NE(ahead.next(), nullptr);
  }  // a cancelled run: the destructor stops and joins
  EXPECT_LT(f.adapter.progress(), 0.01);
}

TEST(KeyTable, R9_EveryKeyKeepsItsOwnEntryThroughGrowthAndBytesAreComparedExactly) {
  KeyTable t;
  bool inserted = false;
  for (int i = 0; i < 100'000; ++i) {
    const auto id = t.find_or_insert("key-" + std::to_string(i), inserted);
    ASSERT_TRUE(inserted);
    ASSERT_EQ(id, static_cast<KeyTable::Id>(i));
    t.at(id).checksum = static_cast<uint64_t>(i) * 7;
  }
  for (int i = 0; i < 100'000; ++i) {
    const auto key = "key-" + std::to_string(i);
    const auto id = t.find(key);
    ASSERT_NE(id, KeyTable::kNone);
    EXPECT_EQ(t.key(id), key);
    EXPECT_EQ(t.at(id).checksum, static_cast<uint64_t>(i) * 7);
    EXPECT_EQ(t.find_or_insert(key, inserted), id);
    EXPECT_FALSE(inserted);
  }
  EXPECT_EQ(t.find("key-100000"), KeyTable::kNone);
  EXPECT_EQ(t.find(std::string("key-1\0", 6)), KeyTable::kNone);  // a prefix plus a NUL is another key
  const auto empty = t.find_or_insert("", inserted);
  EXPECT_TRUE(inserted);
  EXPECT_EQ(t.key(empty), "");
  EXPECT_EQ(t.size(), 100'001u);
  // Compact: no allocation per key; at most twice the entries and keys' bytes (growth by doubling)
  // and 4 index slots per key.
  EXPECT_LT(t.memory_bytes(), 100'001u * (2 * sizeof(KeyTable::Entry) + 4 * sizeof(KeyTable::Id) + 2 * 10));
}

}  // namespace
}  // namespace leadsync::producers
