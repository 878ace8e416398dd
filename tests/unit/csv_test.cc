#include "common/csv.h"

#include <gtest/gtest.h>

#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace leadsync::common {

// Readable failure output for records and errors.
void PrintTo(const CsvRecord& record, std::ostream* os) {
  *os << "{line " << record.line << ", index " << record.index << ", cells [";
  for (std::size_t i = 0; i < record.cells.size(); ++i) {
    *os << (i ? ", " : "") << testing::PrintToString(record.cells[i]);
  }
  *os << "]}";
}

void PrintTo(const CsvError& error, std::ostream* os) {
  *os << "{line " << error.line << ", column " << error.column << ", " << error.message << "}";
}

namespace {

using Rows = std::vector<std::vector<std::string>>;

struct ReadResult {
  std::vector<CsvRecord> records;
  std::vector<std::optional<CsvError>> errors;  // one per record
  std::vector<std::size_t> bytes_after;         // bytes_read() after each record

  Rows rows() const {
    Rows rows;
    for (const auto& record : records) rows.push_back(record.cells);
    return rows;
  }
  std::vector<CsvError> reported() const {
    std::vector<CsvError> reported;
    for (const auto& error : errors) {
      if (error) reported.push_back(*error);
    }
    return reported;
  }
};

ReadResult read_with_chunk(std::string_view text, std::size_t chunk_size, char delimiter = ',') {
  std::istringstream in{std::string(text)};
  CsvReader reader(in, delimiter, chunk_size);
  ReadResult result;
  CsvRecord record;
  std::optional<CsvError> error;
  while (reader.next(record, error)) {
    result.records.push_back(record);
    result.errors.push_back(error);
    result.bytes_after.push_back(reader.bytes_read());
  }
  EXPECT_FALSE(reader.next(record, error)) << "the end of input stays the end";
  EXPECT_EQ(reader.bytes_read(), text.size());
  return result;
}

// Reads with the default chunk and checks that tiny chunks, which put every byte on a chunk
// boundary, give exactly the same records, errors and progress.
ReadResult read_all(std::string_view text, char delimiter = ',') {
  ReadResult result = read_with_chunk(text, CsvReader::kDefaultChunkSize, delimiter);
  for (const std::size_t chunk_size : {1, 2, 3, 7}) {
    const ReadResult chunked = read_with_chunk(text, chunk_size, delimiter);
    EXPECT_EQ(chunked.records, result.records) << "chunk size " << chunk_size;
    EXPECT_EQ(chunked.errors, result.errors) << "chunk size " << chunk_size;
    EXPECT_EQ(chunked.bytes_after, result.bytes_after) << "chunk size " << chunk_size;
  }
  return result;
}

std::vector<std::size_t> lines_of(const ReadResult& result) {
  std::vector<std::size_t> lines;
  for (const auto& record : result.records) lines.push_back(record.line);
  return lines;
}

// ---- Reader: well-formed input ----

TEST(CsvReader, ReadsRecordsWithTheirLineAndIndex) {
  const auto result = read_all("name,email\nAnn,a@x\nBob,b@x\n");
  EXPECT_EQ(result.rows(), (Rows{{"name", "email"}, {"Ann", "a@x"}, {"Bob", "b@x"}}));
  EXPECT_EQ(lines_of(result), (std::vector<std::size_t>{1, 2, 3}));
  for (std::size_t i = 0; i < result.records.size(); ++i) {
    EXPECT_EQ(result.records[i].index, i + 1);
    EXPECT_FALSE(result.errors[i]);
  }
}

TEST(CsvReader, GivesNoRecordsForEmptyInput) {
  EXPECT_TRUE(read_all("").records.empty());
}

TEST(CsvReader, GivesNoRecordsForInputThatIsOnlyABom) {
  EXPECT_TRUE(read_all("\xEF\xBB\xBF").records.empty());
}

TEST(CsvReader, StripsUtf8BomAtTheVeryStart) {
  const auto result = read_all("\xEF\xBB\xBFname,email\nAnn,a@x\n");
  EXPECT_EQ(result.rows(), (Rows{{"name", "email"}, {"Ann", "a@x"}}));
}

TEST(CsvReader, KeepsBomBytesThatAreNotAtTheStart) {
  EXPECT_EQ(read_all("a\n\xEF\xBB\xBF"
                     "b\n")
                .rows(),
            (Rows{{"a"}, {"\xEF\xBB\xBF"
                          "b"}}));
  EXPECT_EQ(read_all("\xEF\xBB").rows(), (Rows{{"\xEF\xBB"}})) << "a partial BOM is data";
}

TEST(CsvReader, ReadsLastLineWithOrWithoutTrailingNewline) {
  EXPECT_EQ(read_all("a,b\nc,d").rows(), (Rows{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(read_all("a,b\nc,d\n").rows(), (Rows{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(read_all("a,b\r\nc,d\r\n").rows(), (Rows{{"a", "b"}, {"c", "d"}}));
  EXPECT_EQ(read_all("a,\"b\"").rows(), (Rows{{"a", "b"}}));
}

TEST(CsvReader, ReturnsABlankLineAsOneEmptyCell) {
  const auto result = read_all("a\n\nb\r\n\r\n\nc");
  EXPECT_EQ(result.rows(), (Rows{{"a"}, {""}, {"b"}, {""}, {""}, {"c"}}));
  EXPECT_EQ(lines_of(result), (std::vector<std::size_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(read_all("\n").rows(), (Rows{{""}}));
}

TEST(CsvReader, AcceptsLfCrlfAndLoneCrLineEndings) {
  const auto result = read_all("a,1\nb,2\r\nc,3\rd,4\r");
  EXPECT_EQ(result.rows(), (Rows{{"a", "1"}, {"b", "2"}, {"c", "3"}, {"d", "4"}}));
  EXPECT_EQ(lines_of(result), (std::vector<std::size_t>{1, 2, 3, 4}));
}

TEST(CsvReader, ReadsQuotedCommasQuotesAndNewlines) {
  const auto result = read_all(
      "\"Smith, Ann\",\"say \"\"hi\"\"\",\"two\nlines\"\n"
      "\"\",\"\"\"\",plain\n");
  EXPECT_EQ(result.rows(),
            (Rows{{"Smith, Ann", "say \"hi\"", "two\nlines"}, {"", "\"", "plain"}}));
  EXPECT_EQ(result.reported(), std::vector<CsvError>{});
}

TEST(CsvReader, KeepsCrlfAndLoneCrInsideQuotes) {
  const auto result = read_all("\"a\r\nb\",\"c\rd\"\r\nnext,row\r\n");
  EXPECT_EQ(result.rows(), (Rows{{"a\r\nb", "c\rd"}, {"next", "row"}}));
  EXPECT_EQ(lines_of(result), (std::vector<std::size_t>{1, 4}));
}

TEST(CsvReader, ReturnsRaggedRowsAsTheyAre) {
  const auto result = read_all("a,b,c\n1\n1,2,3,4\n,\n");
  EXPECT_EQ(result.rows(), (Rows{{"a", "b", "c"}, {"1"}, {"1", "2", "3", "4"}, {"", ""}}));
}

TEST(CsvReader, KeepsEmptyCellsAtBothEnds) {
  EXPECT_EQ(read_all(",a,\n,,\n").rows(), (Rows{{"", "a", ""}, {"", "", ""}}));
}

TEST(CsvReader, ReadsAccentedAndMultibyteUtf8Cells) {
  const auto result = read_all("nom,ville\nJosé Müller,Zürich\n\"Łódź, PL\",東京 😀\n");
  EXPECT_EQ(result.rows(),
            (Rows{{"nom", "ville"}, {"José Müller", "Zürich"}, {"Łódź, PL", "東京 😀"}}));
}

TEST(CsvReader, KeepsSurroundingSpacesInCells) {
  EXPECT_EQ(read_all(" a , b \n").rows(), (Rows{{" a ", " b "}}));
}

TEST(CsvReader, SplitsOnACustomDelimiter) {
  EXPECT_EQ(read_all("a;\"b;c\";d,e\n", ';').rows(), (Rows{{"a", "b;c", "d,e"}}));
  EXPECT_EQ(read_all("a\tb\n", '\t').rows(), (Rows{{"a", "b"}}));
}

TEST(CsvReader, RejectsAQuoteOrLineEndAsDelimiter) {
  std::istringstream in;
  EXPECT_THROW(CsvReader(in, '"'), std::invalid_argument);
  EXPECT_THROW(CsvReader(in, '\n'), std::invalid_argument);
  EXPECT_THROW(CsvReader(in, '\r'), std::invalid_argument);
}

TEST(CsvReader, ReadsAQuotedCellThatSpansChunkBoundaries) {
  const std::string long_cell = "start, \"quoted\"\r\nmiddle\n" + std::string(100, 'x') + ",end";
  const std::string text = "id,note\n1,\"start, \"\"quoted\"\"\r\nmiddle\n" + std::string(100, 'x') +
                           ",end\"\n2,after\n";
  for (const std::size_t chunk_size : {1, 2, 5, 8, 13, 16, 31, 64}) {
    const auto result = read_with_chunk(text, chunk_size);
    EXPECT_EQ(result.rows(), (Rows{{"id", "note"}, {"1", long_cell}, {"2", "after"}}))
        << "chunk size " << chunk_size;
    EXPECT_EQ(lines_of(result), (std::vector<std::size_t>{1, 2, 5})) << "chunk size " << chunk_size;
  }
}

TEST(CsvReader, TreatsCrlfSplitAcrossChunksAsOneLineEnd) {
  // With a chunk of 2, "a\r" fills the first chunk and the LF starts the second.
  const auto result = read_with_chunk("a\r\nb\r\n", 2);
  EXPECT_EQ(result.rows(), (Rows{{"a"}, {"b"}}));
  EXPECT_EQ(lines_of(result), (std::vector<std::size_t>{1, 2}));
}

TEST(CsvReader, ReusesCellStorageBetweenRecords) {
  std::istringstream in(std::string(1000, 'x') + ",y\nshort\n" + "a,b\n");
  CsvReader reader(in);
  CsvRecord record;
  std::optional<CsvError> error;
  ASSERT_TRUE(reader.next(record, error));
  ASSERT_TRUE(reader.next(record, error));
  EXPECT_EQ(record.cells, (std::vector<std::string>{"short"}));
  EXPECT_GE(record.cells[0].capacity(), 1000u) << "the first cell kept its buffer";
  ASSERT_TRUE(reader.next(record, error));
  EXPECT_EQ(record.cells, (std::vector<std::string>{"a", "b"}));
}

TEST(CsvReader, ReportsBytesReadForProgress) {
  const std::string text = "\xEF\xBB\xBFh\nab,c\r\n\"x\ny\"\n";
  const auto result = read_all(text);
  // The LF of a CRLF is taken with the next record: looking ahead for it could block on a stream.
  EXPECT_EQ(result.bytes_after, (std::vector<std::size_t>{5, 10, text.size()}));
}

// ---- Reader: malformed input ----

TEST(CsvReader, ReportsQuoteInsideUnquotedCellAndKeepsItLiterally) {
  const auto result = read_all("a,b\nx,ab\"c,z\n");
  EXPECT_EQ(result.rows(), (Rows{{"a", "b"}, {"x", "ab\"c", "z"}}));
  EXPECT_FALSE(result.errors[0]);
  ASSERT_TRUE(result.errors[1]);
  EXPECT_EQ(result.errors[1]->line, 2u);
  EXPECT_EQ(result.errors[1]->column, 2u);
  EXPECT_NE(result.errors[1]->message.find("quote inside unquoted cell at line 2, cell 2 (B)"),
            std::string::npos)
      << result.errors[1]->message;
}

TEST(CsvReader, ReportsTextAfterClosingQuoteAndKeepsIt) {
  const auto result = read_all("\"ab\"c,d\n");
  EXPECT_EQ(result.rows(), (Rows{{"abc", "d"}}));
  ASSERT_TRUE(result.errors[0]);
  EXPECT_EQ(result.errors[0]->line, 1u);
  EXPECT_EQ(result.errors[0]->column, 1u);
  EXPECT_NE(result.errors[0]->message.find("text after closing quote at line 1, cell 1 (A)"),
            std::string::npos)
      << result.errors[0]->message;
}

TEST(CsvReader, ReportsUnterminatedQuoteWithTheLineWhereTheCellStarted) {
  const auto result = read_all("a,b\n1,2\n3,\"open\nmore\nend");
  EXPECT_EQ(result.rows(), (Rows{{"a", "b"}, {"1", "2"}, {"3", "open\nmore\nend"}}));
  ASSERT_TRUE(result.errors[2]);
  EXPECT_EQ(result.errors[2]->line, 3u);
  EXPECT_EQ(result.errors[2]->column, 2u);
  EXPECT_NE(result.errors[2]->message.find("unterminated quoted cell starting at line 3, cell 2 (B)"),
            std::string::npos)
      << result.errors[2]->message;
}

TEST(CsvReader, KeepsReadingAfterAMalformedRecord) {
  const auto result = read_all("a\"b,c\n\"d\"e,f\ng,h\n");
  EXPECT_EQ(result.rows(), (Rows{{"a\"b", "c"}, {"de", "f"}, {"g", "h"}}));
  EXPECT_TRUE(result.errors[0]);
  EXPECT_TRUE(result.errors[1]);
  EXPECT_FALSE(result.errors[2]) << "the error is reset on the next clean record";
  EXPECT_EQ(lines_of(result), (std::vector<std::size_t>{1, 2, 3}));
}

TEST(CsvReader, ReportsOnlyTheFirstProblemOfARecord) {
  const auto result = read_all("a\"b,c\"d\n");
  ASSERT_TRUE(result.errors[0]);
  EXPECT_EQ(result.errors[0]->column, 1u);
  EXPECT_EQ(result.reported().size(), 1u);
}

TEST(CsvReader, CountsLinesInErrorsAfterMultiLineQuotedCells) {
  const auto result = read_all(
      "h1,h2\r\n"
      "\"line 2\r\nline 3\rline 4\nline 5\",x\r\n"
      "y,bad\"quote\n"
      "\"multi\nline\"oops,z\n");
  EXPECT_EQ(lines_of(result), (std::vector<std::size_t>{1, 2, 6, 7}));
  ASSERT_TRUE(result.errors[2]);
  EXPECT_EQ(result.errors[2]->line, 6u);
  EXPECT_EQ(result.errors[2]->column, 2u);
  ASSERT_TRUE(result.errors[3]);
  EXPECT_EQ(result.errors[3]->line, 8u) << "the problem is on the line where the cell closes";
  EXPECT_EQ(result.errors[3]->column, 1u);
  EXPECT_EQ(result.rows()[3], (std::vector<std::string>{"multi\nlineoops", "z"}));
}

// ---- Header ----

TEST(CsvHeader, TrimsNamesAndFindsColumns) {
  const auto header = parse_csv_header({" name ", "\temail\r", "phone"});
  EXPECT_EQ(header.names, (std::vector<std::string>{"name", "email", "phone"}));
  EXPECT_TRUE(header.issues.empty());
  EXPECT_EQ(header.find("email"), 1u);
  EXPECT_EQ(header.find(" phone "), 2u);
  EXPECT_EQ(header.find("Email"), std::nullopt) << "names compare exactly";
  EXPECT_EQ(header.find("missing"), std::nullopt);
}

TEST(CsvHeader, ReportsEmptyHeaderCells) {
  const auto header = parse_csv_header({"name", "", "  ", "email"});
  ASSERT_EQ(header.issues.size(), 2u);
  EXPECT_EQ(header.issues[0].column, 2u);
  EXPECT_EQ(header.issues[0].message, "empty header cell at column 2 (B)");
  EXPECT_EQ(header.issues[1].column, 3u);
  EXPECT_EQ(header.find(""), std::nullopt);
  EXPECT_FALSE(header.is_duplicate("")) << "empty cells are not duplicates of each other";
}

TEST(CsvHeader, ReportsDuplicateNamesWithAllTheirColumns) {
  const auto header = parse_csv_header({"id", "email", "x", "y", " email", "id", "email "});
  ASSERT_EQ(header.issues.size(), 2u);
  EXPECT_EQ(header.issues[0].column, 1u);
  EXPECT_EQ(header.issues[0].name, "id");
  EXPECT_EQ(header.issues[0].message, "duplicate header \"id\" at columns 1 (A) and 6 (F)");
  EXPECT_EQ(header.issues[1].column, 2u);
  EXPECT_EQ(header.issues[1].message,
            "duplicate header \"email\" at columns 2 (B), 5 (E) and 7 (G)");
  EXPECT_TRUE(header.is_duplicate("email"));
  EXPECT_FALSE(header.is_duplicate("x"));
  EXPECT_EQ(header.find("email"), std::nullopt) << "a duplicated name is ambiguous";
  EXPECT_EQ(header.find("y"), 3u);
}

TEST(CsvHeader, AcceptsAnEmptyHeader) {
  const auto header = parse_csv_header({});
  EXPECT_TRUE(header.names.empty());
  EXPECT_TRUE(header.issues.empty());
}

TEST(ColumnLetter, NamesColumnsLikeASpreadsheet) {
  EXPECT_EQ(column_letter(1), "A");
  EXPECT_EQ(column_letter(2), "B");
  EXPECT_EQ(column_letter(26), "Z");
  EXPECT_EQ(column_letter(27), "AA");
  EXPECT_EQ(column_letter(52), "AZ");
  EXPECT_EQ(column_letter(53), "BA");
  EXPECT_EQ(column_letter(702), "ZZ");
  EXPECT_EQ(column_letter(703), "AAA");
  EXPECT_EQ(column_letter(16384), "XFD");
  EXPECT_EQ(column_letter(0), "");
}

// ---- Writer ----

TEST(CsvWriter, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(csv_quote("plain text"), "plain text");
  EXPECT_EQ(csv_quote(""), "");
  EXPECT_EQ(csv_quote("José"), "José");
  EXPECT_EQ(csv_quote("a,b"), "\"a,b\"");
  EXPECT_EQ(csv_quote("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csv_quote("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csv_quote("cr\rhere"), "\"cr\rhere\"");
  EXPECT_EQ(csv_quote("a;b", ';'), "\"a;b\"");
  EXPECT_EQ(csv_quote("a,b", ';'), "a,b");
}

TEST(CsvWriter, WritesARowWithCrlfByDefault) {
  std::ostringstream out;
  write_csv_row(out, {"id", "Smith, Ann", "say \"hi\"", ""});
  write_csv_row(out, {"x"}, ',', "\n");
  write_csv_row(out, {"a;b", "c"}, ';');
  EXPECT_EQ(out.str(), "id,\"Smith, Ann\",\"say \"\"hi\"\"\",\r\nx\n\"a;b\";c\r\n");
}

// ---- Generated round trips ----

std::string random_cell(std::mt19937& rng) {
  static const std::vector<std::string> pieces = {"a", "b",  "Z",  " ",  ",",  "\"",
                                                  "\r", "\n", "\r\n", "é", "東", "😀", ";"};
  std::uniform_int_distribution<std::size_t> length(0, 8);
  std::uniform_int_distribution<std::size_t> piece(0, pieces.size() - 1);
  std::string cell;
  for (std::size_t n = length(rng); n > 0; --n) cell += pieces[piece(rng)];
  return cell;
}

TEST(CsvRoundTrip, ReadsBackWhatTheWriterWroteForAnyChunkSize) {
  std::mt19937 rng(20240611);
  for (int round = 0; round < 100; ++round) {
    Rows rows;
    std::ostringstream out;
    std::vector<std::size_t> expected_lines;
    std::size_t line = 1;
    const std::string_view line_end = (round % 2 == 0) ? "\r\n" : "\n";
    std::uniform_int_distribution<std::size_t> row_count(1, 30);
    std::uniform_int_distribution<std::size_t> cell_count(1, 6);
    for (std::size_t r = row_count(rng); r > 0; --r) {
      std::vector<std::string> row;
      for (std::size_t c = cell_count(rng); c > 0; --c) row.push_back(random_cell(rng));
      expected_lines.push_back(line);
      write_csv_row(out, row, ',', line_end);
      // A physical line ends at each CRLF, lone CR or lone LF, inside quotes or not.
      std::ostringstream one;
      write_csv_row(one, row, ',', line_end);
      const std::string written = one.str();
      for (std::size_t i = 0; i < written.size(); ++i) {
        if (written[i] == '\r' || (written[i] == '\n' && (i == 0 || written[i - 1] != '\r'))) ++line;
      }
      rows.push_back(std::move(row));
    }
    std::string text = out.str();
    // No trailing line end, unless the last row is one empty cell, which is then a blank line.
    if (round % 3 == 0 && rows.back() != std::vector<std::string>{""}) {
      text.resize(text.size() - line_end.size());
    }
    for (const std::size_t chunk_size : {1, 2, 7, 4096}) {
      const auto result = read_with_chunk(text, chunk_size);
      ASSERT_EQ(result.rows(), rows) << "round " << round << ", chunk size " << chunk_size;
      EXPECT_EQ(lines_of(result), expected_lines) << "round " << round;
      EXPECT_EQ(result.reported(), std::vector<CsvError>{}) << "round " << round;
    }
  }
}

TEST(CsvRoundTrip, GivesTheSameResultForAnyChunkSizeOnArbitraryInput) {
  // Malformed input included: the chunking must never change records, errors or line numbers.
  static const std::string alphabet = "ab,\"\r\n ";
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> length(0, 200);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    for (std::size_t n = length(rng); n > 0; --n) text += alphabet[pick(rng)];
    const auto reference = read_with_chunk(text, 4096);
    for (const std::size_t chunk_size : {1, 2, 7}) {
      const auto result = read_with_chunk(text, chunk_size);
      ASSERT_EQ(result.records, reference.records) << testing::PrintToString(text);
      ASSERT_EQ(result.errors, reference.errors) << testing::PrintToString(text);
    }
  }
}

}  // namespace
}  // namespace leadsync::common
