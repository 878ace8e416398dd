// Deterministic, realistic sales-lead sheets for benchmarks, demos and tests.
//
// Values come from raw std::mt19937_64 draws, the engine seeded per row with a SplitMix64 hash of
// (seed, row), mapped to ranges by hand: the standard fixes the engine's output but not that of
// std::uniform_int_distribution & co., so a seed gives the same bytes with any standard library.
// Row i depends only on (seed, i): sheets can be generated in chunks or streamed in O(1) memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace leadsync::bench {

// Column positions in lead_header() order.
enum LeadColumn : std::size_t {
  kLeadId,
  kFirstName,
  kLastName,
  kEmail,
  kPhone,
  kCompany,
  kStatus,
  kAssignee,
  kLeadSources,
  kScore,
  kCreatedAt,
  kUpdatedAt,
  kNotes,
  kLeadColumnCount
};

std::vector<std::string> lead_header();

// The row at 0-based `index` of the sheet generated from `seed`; its id is L-<index + 1>.
std::vector<std::string> make_lead_row(std::uint64_t seed, std::uint64_t index);

// Header plus rows 0 .. rows-1 as CSV (CRLF line ends, as common::write_csv_row writes them).
void write_lead_sheet(std::ostream& out, std::uint64_t seed, std::uint64_t rows);

// "L-0000042" <-> 42. Ids wider than 7 digits keep all their digits.
std::string format_lead_id(std::uint64_t number);
std::optional<std::uint64_t> parse_lead_id(std::string_view id);

// What happens to one input row when a sheet is mutated.
enum class RowFate { kKeep, kChange, kDelete };

struct MutationOptions {
  std::uint64_t seed = 1;
  double change_fraction = 0.01;
  double delete_fraction = 0.0;
  double add_fraction = 0.0;  // appended rows = round(add_fraction * rows_in)
};

struct MutationStats {
  std::uint64_t rows_in = 0;
  std::uint64_t rows_out = 0;
  std::uint64_t changed = 0;
  std::uint64_t deleted = 0;
  std::uint64_t added = 0;
};

// Empty when the options are usable, else a message naming the bad option and what was expected.
std::string validate(const MutationOptions& options);

// Fate of the row at 0-based `index` of the input: each row independently is deleted with
// probability delete_fraction, or changed with probability change_fraction, or kept.
RowFate row_fate(const MutationOptions& options, std::uint64_t index);

// Alters 1-3 of Status/Assignee/Score/Phone/Lead sources/Notes, each to a value different from the
// current one, and moves Updated at strictly later. `row` must have kLeadColumnCount cells.
void change_lead_row(std::vector<std::string>& row, std::uint64_t seed, std::uint64_t index);

// Reads a sheet with lead_header() from `in` and writes its next version to `out`, streaming: kept
// and changed rows in input order, then round(add_fraction * rows_in) new rows whose ids continue
// after the largest id read (deleted rows included). Returns the exact counts. Throws
// std::invalid_argument for options that fail validate() and std::runtime_error, naming the line,
// for input that is not a lead sheet (header, cell count, CSV syntax).
MutationStats mutate_sheet(std::istream& in, std::ostream& out, const MutationOptions& options);

// {"rows_in":..,"rows_out":..,"changed":..,"deleted":..,"added":..}
std::string to_json(const MutationStats& stats);

}  // namespace leadsync::bench
