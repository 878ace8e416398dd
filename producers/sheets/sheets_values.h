// How one cell of a Sheets API v4 values response (sources.md "Google Sheets API v4 values") becomes
// the text cell the shared mapper coerces by its field's rules, and the A1 ranges of a windowed read.
//
// With valueRenderOption=UNFORMATTED_VALUE a cell is a JSON string, number or boolean:
//  - an integer-valued number prints without a fraction (4915112345678, not 4915112345678.0), so a
//    phone number stored as a number stays the same digits and 42.0 fills an int field;
//  - any other number prints in its shortest form that reads back to the same double;
//  - with dateTimeRenderOption=SERIAL_NUMBER a number in a timestamp or date field is a serial date:
//    days since 1899-12-30, the fraction the time of day (read as UTC, rounded to the millisecond,
//    Sheets' own precision); with FORMATTED_STRING dates arrive as the sheet formats them (text).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

#include "common/config.h"
#include "common/source_config.h"

namespace leadsync::producers::sheets {

// The number as a cell's text: integer-valued doubles (|v| < 2^53) without ".0", others shortest.
std::string number_text(double v);

// A serial date as microseconds since the Unix epoch (1970-01-01 is serial 25569).
int64_t serial_to_micros(double serial);
// A serial date as text the mapper reads for the field's type: "2026-01-02T03:04:05.250Z" for a
// timestamp, "2026-01-02" for a date (the time of day dropped).
std::string serial_text(double serial, common::FieldType type);

// One response cell as text for a column whose field has `type` (nullopt: an unmapped column).
// null and absent cells are "".
std::string cell_text(const nlohmann::json& cell, std::optional<common::FieldType> type, common::SheetsDates dates);

// An A1 range split into what a window needs: "Leads!B2:H" -> sheet "Leads", columns B..H, rows
// from 2, no last row. Columns are empty when the range names whole rows (a bare sheet name).
struct A1Range {
  std::string sheet;  // unquoted; empty: the first sheet
  std::string first_column, last_column;
  int64_t first_row = 1;
  std::optional<int64_t> last_row;
};
// nullopt when `text` is not an A1 range this adapter can window.
std::optional<A1Range> parse_a1(std::string_view text);
// The A1 text of rows [first, last] of `range` ("'My Sheet'!B10:H19").
std::string window_a1(const A1Range& range, int64_t first, int64_t last);
// The last row of a response's `range` ("Leads!A1:H1000" -> 1000); nullopt if it has none.
std::optional<int64_t> last_row_of(std::string_view response_range);

}  // namespace leadsync::producers::sheets
