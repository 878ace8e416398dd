#include "common/csv.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_map>

namespace leadsync::common {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr std::string_view kWhitespace = " \t\r\n\v\f";

// Where the parser is inside the current record. A record always completes within one call to
// CsvReader::next, so this never outlives it.
enum class State {
  kRecordStart,       // nothing of the record consumed yet
  kCellStart,         // a cell has begun and is empty: a quote here opens a quoted cell
  kUnquoted,          // inside an unquoted cell
  kQuoted,            // inside a quoted cell
  kAfterQuoteInQuoted  // a quote inside a quoted cell: it closes the cell or doubles with the next
};

using Problem = CsvProblem;

std::string cell_position(std::size_t line, std::size_t cell) {
  return "line " + std::to_string(line) + ", cell " + std::to_string(cell) + " (" +
         column_letter(cell) + ")";
}

std::string describe(Problem problem, std::size_t line, std::size_t cell) {
  switch (problem) {
    case Problem::kQuoteInUnquoted:
      return "quote inside unquoted cell at " + cell_position(line, cell) +
             ": kept as it is; a cell holding quotes must be quoted, with its quotes doubled";
    case Problem::kTextAfterClosingQuote:
      return "text after closing quote at " + cell_position(line, cell) +
             ": kept after the quoted text; a quote inside a quoted cell must be doubled";
    case Problem::kUnterminatedQuote:
      return "unterminated quoted cell starting at " + cell_position(line, cell) +
             ": the cell runs to the end of the input; close the quote or double the quotes inside";
  }
  return "malformed CSV at " + cell_position(line, cell);
}

// The hot loop: everything up to the next byte that needs a decision is copied in one append.
const char* scan(const char* p, const char* end, const std::array<bool, 256>& stops) {
  while (p != end && !stops[static_cast<unsigned char>(*p)]) ++p;
  return p;
}

std::string_view trim(std::string_view s) {
  const auto first = s.find_first_not_of(kWhitespace);
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(kWhitespace) - first + 1);
}

std::string column_list(const std::vector<std::size_t>& columns) {
  std::string list;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) list += (i + 1 == columns.size()) ? " and " : ", ";
    list += std::to_string(columns[i]) + " (" + column_letter(columns[i]) + ")";
  }
  return list;
}

bool needs_quotes(std::string_view cell, char delimiter) {
  for (const char c : cell) {
    if (c == delimiter || c == '"' || c == '\r' || c == '\n') return true;
  }
  return false;
}

void write_cell(std::ostream& out, std::string_view cell, char delimiter) {
  if (!needs_quotes(cell, delimiter)) {
    out.write(cell.data(), static_cast<std::streamsize>(cell.size()));
    return;
  }
  out.put('"');
  for (std::size_t start = 0;;) {
    const auto quote = cell.find('"', start);
    const auto piece = cell.substr(start, quote == std::string_view::npos ? quote : quote + 1 - start);
    out.write(piece.data(), static_cast<std::streamsize>(piece.size()));
    if (quote == std::string_view::npos) break;
    out.put('"');  // the doubled quote
    start = quote + 1;
  }
  out.put('"');
}

}  // namespace

CsvReader::CsvReader(std::istream& in, char delimiter, std::size_t chunk_size)
    : in_(in),
      delimiter_(delimiter),
      chunk_size_(std::max<std::size_t>(chunk_size, 1)),
      buffer_capacity_(std::max(chunk_size_, kBom.size())),
      buffer_(std::make_unique_for_overwrite<char[]>(buffer_capacity_)) {
  if (delimiter == '"' || delimiter == '\r' || delimiter == '\n') {
    throw std::invalid_argument("CSV delimiter cannot be a quote, CR or LF");
  }
  for (const char c : {'"', '\r', '\n'}) {
    stops_quoted_[static_cast<unsigned char>(c)] = true;
    stops_unquoted_[static_cast<unsigned char>(c)] = true;
  }
  stops_unquoted_[static_cast<unsigned char>(delimiter)] = true;
}

bool CsvReader::next(CsvRecord& out, std::optional<CsvError>& out_error) {
  out_error.reset();
  State state = State::kRecordStart;
  std::size_t cell_count = 0;
  std::string* cell = nullptr;
  std::size_t quote_line = 0;  // where the current quoted cell opened
  const auto report = [&](Problem problem, std::size_t line) {
    if (!out_error) out_error = CsvError{line, cell_count, describe(problem, line, cell_count), problem};
  };

  while (pos_ != end_ || refill()) {
    const char* const p = pos_;
    switch (state) {
      case State::kRecordStart:
        if (after_cr_) {
          after_cr_ = false;
          if (*p == '\n') {  // the LF of the CRLF that ended the previous record
            pos_ = p + 1;
            break;
          }
        }
        out.line = line_;
        cell = &begin_cell(out, cell_count);
        state = State::kCellStart;
        break;

      case State::kCellStart:
        if (*p == '"') {
          quote_line = line_;
          pos_ = p + 1;
          state = State::kQuoted;
          break;
        }
        state = State::kUnquoted;
        [[fallthrough]];

      case State::kUnquoted: {
        const char* const stop = scan(p, end_, stops_unquoted_);
        cell->append(p, static_cast<std::size_t>(stop - p));
        pos_ = stop;
        if (stop == end_) break;
        const char c = *stop;
        pos_ = stop + 1;
        if (c == delimiter_) {
          cell = &begin_cell(out, cell_count);
          state = State::kCellStart;
        } else if (c == '"') {
          report(Problem::kQuoteInUnquoted, line_);
          cell->push_back('"');
        } else {
          count_line_end(c);
          return finish_record(out, cell_count);
        }
        break;
      }

      case State::kQuoted: {
        const char* const stop = scan(p, end_, stops_quoted_);
        if (stop != p) {
          cell->append(p, static_cast<std::size_t>(stop - p));
          after_cr_ = false;
        }
        pos_ = stop;
        if (stop == end_) break;
        const char c = *stop;
        pos_ = stop + 1;
        if (c == '"') {
          after_cr_ = false;
          state = State::kAfterQuoteInQuoted;
        } else {  // a line end inside the cell is data, but still moves the line count on
          cell->push_back(c);
          count_line_end(c);
        }
        break;
      }

      case State::kAfterQuoteInQuoted: {
        const char c = *p;
        if (c == '"') {
          cell->push_back('"');
          pos_ = p + 1;
          state = State::kQuoted;
        } else if (c == delimiter_) {
          pos_ = p + 1;
          cell = &begin_cell(out, cell_count);
          state = State::kCellStart;
        } else if (c == '\r' || c == '\n') {
          pos_ = p + 1;
          count_line_end(c);
          return finish_record(out, cell_count);
        } else {
          report(Problem::kTextAfterClosingQuote, line_);
          state = State::kUnquoted;  // the rest of the cell is taken as it is
        }
        break;
      }
    }
  }

  // End of input.
  switch (state) {
    case State::kRecordStart:
      return false;
    case State::kQuoted:
      ended_in_open_quote_ = true;
      report(Problem::kUnterminatedQuote, quote_line);
      break;
    default:
      break;
  }
  return finish_record(out, cell_count);
}

void CsvReader::continue_from(const Position& p) {
  bom_checked_ = true;
  stream_bytes_ = p.offset;
  line_ = p.line;
  after_cr_ = p.after_cr;
}

std::size_t CsvReader::bytes_read() const {
  return stream_bytes_ - static_cast<std::size_t>(end_ - pos_);
}

bool CsvReader::refill() {
  char* const buffer = buffer_.get();
  std::size_t n = read_into(buffer, chunk_size_);
  pos_ = buffer;
  if (!bom_checked_) {
    // Read at least the BOM's length, whatever the chunk size, so that the check sees all of it.
    while (n < kBom.size()) {
      const std::size_t more = read_into(buffer + n, buffer_capacity_ - n);
      if (more == 0) break;
      n += more;
    }
    bom_checked_ = true;
    if (std::string_view(buffer, n).starts_with(kBom)) pos_ += kBom.size();
  }
  end_ = buffer + n;
  if (pos_ == end_ && n != 0) return refill();  // the input so far was only the BOM
  return pos_ != end_;
}

std::size_t CsvReader::read_into(char* dst, std::size_t n) {
  if (!in_.good()) return 0;
  in_.read(dst, static_cast<std::streamsize>(n));
  const auto got = static_cast<std::size_t>(in_.gcount());
  stream_bytes_ += got;
  return got;
}

std::string& CsvReader::begin_cell(CsvRecord& out, std::size_t& cell_count) {
  auto& cells = out.cells;
  if (cell_count == cells.size()) {
    if (spare_cells_.empty()) {
      cells.emplace_back();
    } else {
      cells.push_back(std::move(spare_cells_.back()));
      spare_cells_.pop_back();
    }
  }
  std::string& cell = cells[cell_count++];
  cell.clear();
  return cell;
}

bool CsvReader::finish_record(CsvRecord& out, std::size_t cell_count) {
  auto& cells = out.cells;
  while (cells.size() > cell_count) {
    spare_cells_.push_back(std::move(cells.back()));
    cells.pop_back();
  }
  out.index = ++records_;
  return true;
}

// CRLF is one line end, and so are a lone LF and a lone CR.
void CsvReader::count_line_end(char c) {
  if (c == '\r') {
    ++line_;
    after_cr_ = true;
    return;
  }
  if (!after_cr_) ++line_;
  after_cr_ = false;
}

std::optional<std::size_t> CsvHeader::find(std::string_view name) const {
  name = trim(name);
  if (name.empty()) return std::nullopt;
  std::optional<std::size_t> found;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (names[i] != name) continue;
    if (found) return std::nullopt;  // ambiguous
    found = i;
  }
  return found;
}

bool CsvHeader::is_duplicate(std::string_view name) const {
  name = trim(name);
  return !name.empty() && std::count(names.begin(), names.end(), name) > 1;
}

CsvHeader parse_csv_header(const std::vector<std::string>& cells) {
  CsvHeader header;
  header.names.reserve(cells.size());
  for (const auto& cell : cells) header.names.emplace_back(trim(cell));

  std::unordered_map<std::string_view, std::vector<std::size_t>> columns_by_name;
  for (std::size_t i = 0; i < header.names.size(); ++i) {
    if (!header.names[i].empty()) columns_by_name[header.names[i]].push_back(i + 1);
  }
  for (std::size_t i = 0; i < header.names.size(); ++i) {
    const std::string& name = header.names[i];
    const std::size_t column = i + 1;
    if (name.empty()) {
      header.issues.push_back({column, name,
                               "empty header cell at column " + std::to_string(column) + " (" +
                                   column_letter(column) + ")"});
      continue;
    }
    const auto& columns = columns_by_name.at(name);
    if (columns.size() > 1 && columns.front() == column) {
      header.issues.push_back(
          {column, name, "duplicate header \"" + name + "\" at columns " + column_list(columns)});
    }
  }
  return header;
}

std::string column_letter(std::size_t column_1_based) {
  std::string letters;
  for (std::size_t n = column_1_based; n > 0; n = (n - 1) / 26) {
    letters.insert(letters.begin(), static_cast<char>('A' + (n - 1) % 26));
  }
  return letters;
}

std::vector<std::string> describe_header_issues(const CsvHeader& header) {
  std::vector<std::string> out;
  for (const auto& issue : header.issues) out.push_back("column " + column_letter(issue.column) + ": " + issue.message);
  return out;
}

std::string csv_quote(std::string_view cell, char delimiter) {
  if (!needs_quotes(cell, delimiter)) return std::string(cell);
  std::string quoted;
  quoted.reserve(cell.size() + 2);
  quoted.push_back('"');
  for (const char c : cell) {
    if (c == '"') quoted.push_back('"');
    quoted.push_back(c);
  }
  quoted.push_back('"');
  return quoted;
}

void write_csv_row(std::ostream& out, const std::vector<std::string>& cells, char delimiter,
                   std::string_view line_end) {
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i > 0) out.put(delimiter);
    write_cell(out, cells[i], delimiter);
  }
  out.write(line_end.data(), static_cast<std::streamsize>(line_end.size()));
}

}  // namespace leadsync::common
