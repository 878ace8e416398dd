#include "bench/gen/lead_data.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "common/csv.h"

namespace leadsync::bench {
namespace {

using Row = std::vector<std::string>;

std::string sheet(std::uint64_t seed, std::uint64_t rows) {
  std::ostringstream out;
  write_lead_sheet(out, seed, rows);
  return out.str();
}

// All records of a CSV text; fails the test on any CSV error.
std::vector<Row> read_all(const std::string& text) {
  std::istringstream in(text);
  common::CsvReader reader(in);
  common::CsvRecord record;
  std::optional<common::CsvError> error;
  std::vector<Row> rows;
  while (reader.next(record, error)) {
    EXPECT_FALSE(error.has_value()) << "line " << record.line << ": " << error->message;
    rows.push_back(record.cells);
  }
  return rows;
}

std::string normalised_email(std::string email) {
  const auto first = email.find_first_not_of(' ');
  const auto last = email.find_last_not_of(' ');
  email = first == std::string::npos ? "" : email.substr(first, last - first + 1);
  for (char& c : email) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return email;
}

bool is_timestamp(const std::string& s) {
  static constexpr std::string_view kShape = "dddd-dd-dd dd:dd:dd";
  if (s.size() != kShape.size()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool digit = std::isdigit(static_cast<unsigned char>(s[i]));
    if (kShape[i] == 'd' ? !digit : s[i] != kShape[i]) return false;
  }
  return true;
}

std::vector<std::string> split_sources(const std::string& cell) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= cell.size() && !cell.empty()) {
    const auto comma = cell.find(", ", start);
    items.push_back(cell.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 2;
  }
  return items;
}

const std::set<std::string> kStatuses = {"new",      "contacted", "qualified",
                                         "proposal", "won",       "lost"};
const std::set<std::string> kSources = {"aimedici", "web",        "referral", "fiera",
                                        "linkedin", "google-ads", "facebook", "partner"};
const std::vector<LeadColumn> kChangeable = {kStatus, kAssignee,    kScore,
                                             kPhone,  kLeadSources, kNotes};

TEST(LeadData, SameSeedGivesByteIdenticalSheets) {
  EXPECT_EQ(sheet(42, 2000), sheet(42, 2000));
}

TEST(LeadData, DifferentSeedGivesDifferentRows) {
  const auto a = read_all(sheet(42, 100)), b = read_all(sheet(43, 100));
  ASSERT_EQ(a.size(), b.size());
  int differing = 0;
  for (std::size_t i = 1; i < a.size(); ++i) differing += a[i] != b[i];
  EXPECT_EQ(differing, 100);
}

TEST(LeadData, RowDependsOnlyOnSeedAndIndex) {
  std::vector<Row> forward, backward(500);
  for (std::uint64_t i = 0; i < 500; ++i) forward.push_back(make_lead_row(9, i));
  for (std::uint64_t i = 500; i-- > 0;) backward[i] = make_lead_row(9, i);
  EXPECT_EQ(forward, backward);
  EXPECT_EQ(read_all(sheet(9, 500))[321], forward[320]);
}

TEST(LeadData, IdsAndNormalisedEmailsAreUniqueOver10000Rows) {
  std::set<std::string> ids, emails;
  for (std::uint64_t i = 0; i < 10'000; ++i) {
    const Row row = make_lead_row(42, i);
    EXPECT_EQ(row[kLeadId], format_lead_id(i + 1));
    ids.insert(row[kLeadId]);
    emails.insert(normalised_email(row[kEmail]));
  }
  EXPECT_EQ(ids.size(), 10'000u);
  EXPECT_EQ(emails.size(), 10'000u);
}

TEST(LeadData, CellsFollowTheColumnFormats) {
  for (std::uint64_t i = 0; i < 10'000; ++i) {
    const Row row = make_lead_row(5, i);
    ASSERT_EQ(row.size(), kLeadColumnCount);
    SCOPED_TRACE(row[kLeadId]);
    const std::string email = normalised_email(row[kEmail]);
    EXPECT_EQ(std::count(email.begin(), email.end(), '@'), 1);
    constexpr std::string_view kEmailChars = "abcdefghijklmnopqrstuvwxyz0123456789._@-";
    EXPECT_EQ(email.find_first_not_of(kEmailChars), std::string::npos) << email;
    EXPECT_TRUE(kStatuses.count(row[kStatus])) << row[kStatus];
    EXPECT_TRUE(row[kAssignee].starts_with("agente") && row[kAssignee].ends_with("@creditplan.it"));
    const auto sources = split_sources(row[kLeadSources]);
    EXPECT_LE(sources.size(), 3u);
    EXPECT_EQ(std::set<std::string>(sources.begin(), sources.end()).size(), sources.size());
    for (const auto& source : sources) EXPECT_TRUE(kSources.count(source)) << source;
    if (!row[kScore].empty()) {
      const int score = std::stoi(row[kScore]);
      EXPECT_TRUE(score >= 0 && score <= 100) << row[kScore];
      EXPECT_EQ(std::to_string(score), row[kScore]);
    }
    ASSERT_TRUE(is_timestamp(row[kCreatedAt]) && is_timestamp(row[kUpdatedAt]));
    EXPECT_LE(row[kCreatedAt], row[kUpdatedAt]);  // this format sorts as text
    EXPECT_GE(row[kCreatedAt], "2025-01-01 00:00:00");
    EXPECT_LE(row[kUpdatedAt], "2026-12-31 23:59:59");
  }
}

TEST(LeadData, MessyCellsAppearAtAboutTheirRates) {
  int empty_phone = 0, messy_email = 0, empty_sources = 0, empty_score = 0, multiline_notes = 0;
  int company_comma = 0, company_quote = 0, accented_name = 0, apostrophe_name = 0;
  constexpr int kRows = 10'000;
  for (std::uint64_t i = 0; i < kRows; ++i) {
    const Row row = make_lead_row(42, i);
    empty_phone += row[kPhone].empty();
    messy_email += row[kEmail] != normalised_email(row[kEmail]);
    empty_sources += row[kLeadSources].empty();
    empty_score += row[kScore].empty();
    multiline_notes += row[kNotes].find('\n') != std::string::npos;
    company_comma += row[kCompany].find(',') != std::string::npos;
    company_quote += row[kCompany].find('"') != std::string::npos;
    const std::string name = row[kFirstName] + row[kLastName];
    accented_name += std::any_of(name.begin(), name.end(), [](char c) { return c & 0x80; });
    apostrophe_name += name.find('\'') != std::string::npos;
  }
  const auto near = [](int count, double rate) {
    return std::abs(count - rate * kRows) < 0.3 * rate * kRows;
  };
  EXPECT_TRUE(near(empty_phone, 0.05)) << empty_phone;
  EXPECT_TRUE(near(messy_email, 0.02)) << messy_email;
  EXPECT_TRUE(near(empty_sources, 0.03)) << empty_sources;
  EXPECT_TRUE(near(empty_score, 0.03)) << empty_score;
  EXPECT_TRUE(near(multiline_notes, 0.01)) << multiline_notes;
  EXPECT_GT(company_comma, 100);
  EXPECT_GT(company_quote, 100);
  EXPECT_GT(accented_name, 1000);
  EXPECT_GT(apostrophe_name, 100);
}

TEST(LeadData, CsvRoundTripGivesThirteenCellsPerRow) {
  const auto rows = read_all(sheet(42, 10'000));
  ASSERT_EQ(rows.size(), 10'001u);
  EXPECT_EQ(rows[0], lead_header());
  for (std::uint64_t i = 0; i < 10'000; ++i) {
    ASSERT_EQ(rows[i + 1].size(), 13u);
    ASSERT_EQ(rows[i + 1], make_lead_row(42, i));
  }
}

TEST(LeadData, LeadIdsFormatAndParse) {
  EXPECT_EQ(format_lead_id(42), "L-0000042");
  EXPECT_EQ(format_lead_id(12'345'678), "L-12345678");
  EXPECT_EQ(parse_lead_id("L-0000042"), 42u);
  EXPECT_EQ(parse_lead_id("L-12345678"), 12'345'678u);
  EXPECT_EQ(parse_lead_id("L-"), std::nullopt);
  EXPECT_EQ(parse_lead_id("X-0000042"), std::nullopt);
  EXPECT_EQ(parse_lead_id("L-00a0042"), std::nullopt);
}

TEST(LeadMutation, ChangedRowDiffersOnlyInChangeableColumnsAndIsUpdatedLater) {
  for (std::uint64_t i = 0; i < 5'000; ++i) {
    const Row before = make_lead_row(1, i);
    Row after = before;
    change_lead_row(after, 2, i);
    int changed_columns = 0;
    for (const LeadColumn column : kChangeable) changed_columns += after[column] != before[column];
    EXPECT_TRUE(changed_columns >= 1 && changed_columns <= 3)
        << before[kLeadId] << ": " << changed_columns;
    EXPECT_GT(after[kUpdatedAt], before[kUpdatedAt]);
    ASSERT_TRUE(is_timestamp(after[kUpdatedAt]));
    for (const LeadColumn column : {kLeadId, kFirstName, kLastName, kEmail, kCompany, kCreatedAt}) {
      EXPECT_EQ(after[column], before[column]);
    }
  }
}

TEST(LeadMutation, CountsAreExactAndEveryChangedRowDiffers) {
  const std::string original = sheet(42, 10'000);
  MutationOptions options;
  options.seed = 7;
  options.change_fraction = 0.05;
  options.delete_fraction = 0.02;
  options.add_fraction = 0.03;
  std::istringstream in(original);
  std::ostringstream out;
  const MutationStats stats = mutate_sheet(in, out, options);

  const auto rows = read_all(out.str());
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0], lead_header());
  EXPECT_EQ(stats.rows_in, 10'000u);
  EXPECT_EQ(stats.rows_out, rows.size() - 1);
  EXPECT_EQ(stats.added, 300u);
  EXPECT_EQ(stats.rows_out, stats.rows_in - stats.deleted + stats.added);
  EXPECT_NEAR(static_cast<double>(stats.changed), 500, 100);
  EXPECT_NEAR(static_cast<double>(stats.deleted), 200, 60);

  // Walk the original rows along the output: kept rows are identical, changed rows differ, deleted
  // rows are missing; the rest are new rows with ids after the largest one.
  std::uint64_t changed = 0, deleted = 0, added = 0;
  std::size_t next = 1;
  std::set<std::string> emails;
  for (std::uint64_t i = 0; i < 10'000; ++i) {
    const Row before = make_lead_row(42, i);
    if (next < rows.size() && rows[next][kLeadId] == before[kLeadId]) {
      const bool differs = rows[next] != before;
      EXPECT_EQ(differs, row_fate(options, i) == RowFate::kChange) << before[kLeadId];
      changed += differs;
      emails.insert(normalised_email(rows[next][kEmail]));
      ++next;
    } else {
      EXPECT_EQ(row_fate(options, i), RowFate::kDelete) << before[kLeadId];
      ++deleted;
    }
  }
  for (; next < rows.size(); ++next, ++added) {
    EXPECT_EQ(rows[next][kLeadId], format_lead_id(10'001 + added));
    emails.insert(normalised_email(rows[next][kEmail]));
  }
  EXPECT_EQ(changed, stats.changed);
  EXPECT_EQ(deleted, stats.deleted);
  EXPECT_EQ(added, stats.added);
  EXPECT_EQ(emails.size(), stats.rows_out);
}

TEST(LeadMutation, SameSeedGivesByteIdenticalVersions) {
  const std::string original = sheet(42, 3'000);
  const auto mutate = [&](std::uint64_t seed) {
    MutationOptions options;
    options.seed = seed;
    options.change_fraction = 0.1;
    options.delete_fraction = 0.01;
    options.add_fraction = 0.01;
    std::istringstream in(original);
    std::ostringstream out;
    mutate_sheet(in, out, options);
    return out.str();
  };
  EXPECT_EQ(mutate(3), mutate(3));
  EXPECT_NE(mutate(3), mutate(4));
}

TEST(LeadMutation, RejectsInputThatIsNotALeadSheet) {
  MutationOptions options;
  std::ostringstream out;
  std::istringstream other_header("id,name\r\n1,Ann\r\n");
  EXPECT_THROW(mutate_sheet(other_header, out, options), std::runtime_error);
  std::istringstream short_row(sheet(1, 3) + "L-0000004,Ann\r\n");
  EXPECT_THROW(mutate_sheet(short_row, out, options), std::runtime_error);
  std::istringstream empty("");
  EXPECT_THROW(mutate_sheet(empty, out, options), std::runtime_error);
}

TEST(LeadMutation, RejectsFractionsOutOfRange) {
  MutationOptions options;
  EXPECT_EQ(validate(options), "");
  options.change_fraction = 0.7;
  options.delete_fraction = 0.4;
  EXPECT_NE(validate(options).find("at most 1"), std::string::npos);
  options.delete_fraction = -0.1;
  EXPECT_NE(validate(options).find("--delete-fraction"), std::string::npos);
  std::istringstream in(sheet(1, 3));
  std::ostringstream out;
  EXPECT_THROW(mutate_sheet(in, out, options), std::invalid_argument);
}

}  // namespace
}  // namespace leadsync::bench
