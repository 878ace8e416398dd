// Streaming RFC 4180 CSV reader (https://www.rfc-editor.org/rfc/rfc4180) for spreadsheet exports
// (sources.md "Spreadsheet as CSV"), plus header validation and a small writer.
//
// Accepted beyond the RFC, because real exports do it: LF and lone CR line ends as well as CRLF, an
// optional UTF-8 byte order mark at the very start, a last line without a line end, ragged rows.
// Malformed input is a per-record value (CsvError), never an exception: one bad row must not stop a
// sync, and the caller decides whether a record with an error is skipped or fails the run.
#pragma once

#include <array>
#include <cstddef>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace leadsync::common {

struct CsvRecord {
  std::vector<std::string> cells;
  std::size_t line = 0;   // 1-based physical line number where the record starts (for error messages)
  std::size_t index = 0;  // 1-based record number (the header is record 1)
  friend bool operator==(const CsvRecord&, const CsvRecord&) = default;
};

// An unterminated quote swallows the rest of the input into one cell: unlike the other two, the
// reader cannot recover from it, and a caller should distrust the whole input.
enum class CsvProblem { kQuoteInUnquoted, kTextAfterClosingQuote, kUnterminatedQuote };

struct CsvError {
  std::size_t line = 0;    // 1-based physical line where the problem is
  std::size_t column = 0;  // 1-based cell number within the record
  std::string message;     // e.g. "unterminated quoted cell starting at line 12, cell 3 (C)"
  CsvProblem problem = CsvProblem::kQuoteInUnquoted;
  friend bool operator==(const CsvError&, const CsvError&) = default;
};

class CsvReader {
 public:
  static constexpr std::size_t kDefaultChunkSize = std::size_t{1} << 20;

  // `chunk_size` is how many bytes each read from `in` asks for; memory use is about the chunk size
  // plus the longest record. Each read waits until the chunk is full or the input ends (istream::read),
  // so on a network stream records arrive a chunk at a time. Tests pass tiny sizes to put every
  // byte on a chunk boundary.
  // Throws std::invalid_argument if `delimiter` is '"', CR or LF.
  explicit CsvReader(std::istream& in, char delimiter = ',',
                     std::size_t chunk_size = kDefaultChunkSize);
  CsvReader(const CsvReader&) = delete;
  CsvReader& operator=(const CsvReader&) = delete;

  // Reads the next record into `out`. Returns true for a record, false at the end of input.
  // A malformed record does not stop the reader: it is still returned (best effort cells) and
  // `out_error` holds its first problem; the reader carries on with the next line. Otherwise
  // `out_error` is reset. `out.cells` is reused between calls: its strings keep their capacity.
  //  - `ab"c`   → cell `ab"c` kept literally, error "quote inside unquoted cell".
  //  - `"ab"c`  → cell `abc`, error "text after closing quote".
  //  - a quote opened and never closed → the cell holds the rest of the input, error naming the
  //    line where the cell started.
  // An empty input gives no records; a blank line is a record with one empty cell.
  // A stream that fails to read (badbit) looks like the end of input: check `in.bad()` after false.
  bool next(CsvRecord& out, std::optional<CsvError>& out_error);

  // Input bytes consumed by the records returned so far (the BOM included), for progress reporting.
  // The LF of a CRLF that ends a record is taken by the following call (looking ahead for it could
  // block on a stream); once next() has returned false this is the whole input's size.
  std::size_t bytes_read() const;

  // Where the next record starts, so that a later reader can continue there (a resumed run): the
  // input's byte offset, the record's physical line, and whether the LF of a CRLF that ended the
  // last record is still to be skipped.
  struct Position {
    std::size_t offset = 0;
    std::size_t line = 1;
    bool after_cr = false;
  };
  Position position() const { return {bytes_read(), line_, after_cr_}; }
  // For a reader on an input already positioned at `p.offset`, before its first next(): no byte
  // order mark is looked for, lines are numbered on from `p.line` and bytes_read() from `p.offset`.
  void continue_from(const Position& p);

  // The input ended inside a quoted cell (whatever else was wrong with that record): the last
  // record holds the rest of the input in one cell, so the input cannot be trusted as a whole.
  bool ended_in_open_quote() const noexcept { return ended_in_open_quote_; }

 private:
  bool refill();
  std::size_t read_into(char* dst, std::size_t n);
  std::string& begin_cell(CsvRecord& out, std::size_t& cell_count);
  bool finish_record(CsvRecord& out, std::size_t cell_count);
  void count_line_end(char c);

  std::istream& in_;
  const char delimiter_;
  const std::size_t chunk_size_;
  const std::size_t buffer_capacity_;  // chunk_size_, but at least the BOM's 3 bytes
  std::unique_ptr<char[]> buffer_;
  const char* pos_ = nullptr;  // next unread byte in buffer_
  const char* end_ = nullptr;  // one past the last byte read into buffer_
  bool bom_checked_ = false;
  std::size_t stream_bytes_ = 0;  // bytes taken from `in_`
  std::size_t line_ = 1;          // physical line of *pos_
  std::size_t records_ = 0;
  // The last byte consumed was a CR: an LF right after it belongs to the same line end.
  bool after_cr_ = false;
  bool ended_in_open_quote_ = false;
  // Bytes that end a scan: in an unquoted cell the delimiter, quote, CR, LF; in a quoted one the
  // quote, CR, LF (newlines are kept but counted).
  std::array<bool, 256> stops_unquoted_{};
  std::array<bool, 256> stops_quoted_{};
  // Cells dropped when a record is shorter than the previous one, kept to reuse their capacity.
  std::vector<std::string> spare_cells_;
};

// Header validation: names are trimmed of surrounding ASCII whitespace and compared exactly.
struct CsvHeaderIssue {
  std::size_t column;  // 1-based; for a duplicate, its first column
  std::string name;
  std::string message;  // `empty header cell at column 3 (C)`, `duplicate header "X" at columns 2 (B) and 5 (E)`
};

struct CsvHeader {
  std::vector<std::string> names;      // trimmed
  std::vector<CsvHeaderIssue> issues;  // ordered by column
  // 0-based index of the column named `name` (trimmed too); nullopt when absent, empty, or
  // duplicated (ambiguous).
  std::optional<std::size_t> find(std::string_view name) const;
  bool is_duplicate(std::string_view name) const;
};

CsvHeader parse_csv_header(const std::vector<std::string>& cells);
// The header's issues as a run reports them ("column C: empty header cell ..."), for every source
// whose first row is a header (CSV, a Sheets range).
std::vector<std::string> describe_header_issues(const CsvHeader& header);

// Spreadsheet column letters for error messages: 1 → "A", 26 → "Z", 27 → "AA". 0 → "".
std::string column_letter(std::size_t column_1_based);

// The cell as it goes into a CSV file: quoted (with quotes doubled) only when it holds the
// delimiter, a quote, CR or LF.
std::string csv_quote(std::string_view cell, char delimiter = ',');

// Writes the cells as one CSV line ended by `line_end` (RFC 4180 uses CRLF). A row with no cells
// or one empty cell writes a blank line, which reads back as one empty cell.
void write_csv_row(std::ostream& out, const std::vector<std::string>& cells, char delimiter = ',',
                   std::string_view line_end = "\r\n");

}  // namespace leadsync::common
