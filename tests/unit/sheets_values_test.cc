// Sheets API cells as the mapper's text (producers/sheets/sheets_values.h): serial dates, numbers
// (an integer-valued double for an int field is an int, a phone number keeps no ".0"), A1 windows.
#include "producers/sheets/sheets_values.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/mapping.h"

namespace leadsync::producers::sheets {
namespace {

using common::FieldType;
using common::SheetsDates;
using nlohmann::json;

common::Value coerced(FieldType type, const std::string& text) {
  common::FieldConfig f;
  f.name = "f";
  f.type = type;
  std::string error;
  const auto v = common::coerce_text(f, text, error);
  EXPECT_TRUE(v) << text << ": " << error;
  return v ? *v : common::Value();
}

TEST(SheetsValues, SerialDatesCountDaysSince18991230WithTheFractionAsTimeOfDay) {
  EXPECT_EQ(serial_text(25569, FieldType::kTimestamp), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(serial_text(46023, FieldType::kDate), "2026-01-01");
  EXPECT_EQ(serial_text(46023.5, FieldType::kTimestamp), "2026-01-01T12:00:00.000000Z");
  EXPECT_EQ(serial_text(46023.75, FieldType::kDate), "2026-01-01") << "a date field drops the time of day";
  // 1/3 and 0.1 of a day are not exact doubles: rounded to Sheets' millisecond they are 08:00 and 02:24.
  EXPECT_EQ(serial_text(46023.0 + 1.0 / 3.0, FieldType::kTimestamp), "2026-01-01T08:00:00.000000Z");
  EXPECT_EQ(serial_text(46023.1, FieldType::kTimestamp), "2026-01-01T02:24:00.000000Z");
  EXPECT_EQ(serial_text(46023.0 + 1.5 / 86400.0, FieldType::kTimestamp), "2026-01-01T00:00:01.500000Z");
  EXPECT_EQ(serial_to_micros(46023.5), (int64_t{20454} * 86400 + 43200) * 1'000'000);
  // Before 1970: serial 2 is 1900-01-01 (Sheets has no 1900 leap-day bug: 61 is 1900-03-01).
  EXPECT_EQ(serial_text(2, FieldType::kDate), "1900-01-01");
  EXPECT_EQ(serial_text(61, FieldType::kDate), "1900-03-01");
  // The mapper reads the text back to the same instant.
  EXPECT_EQ(coerced(FieldType::kTimestamp, serial_text(46023.5, FieldType::kTimestamp)).timestamp_micros(),
            serial_to_micros(46023.5));
  EXPECT_EQ(coerced(FieldType::kDate, serial_text(46023.9, FieldType::kDate)).timestamp_micros(),
            serial_to_micros(46023));
}

TEST(SheetsValues, SerialNumbersAreDatesOnlyInDateFieldsAndOnlyWhenAskedFor) {
  EXPECT_EQ(cell_text(json(46023.5), FieldType::kTimestamp, SheetsDates::kSerialNumber), "2026-01-01T12:00:00.000000Z");
  EXPECT_EQ(cell_text(json(46023), FieldType::kDate, SheetsDates::kSerialNumber), "2026-01-01");
  EXPECT_EQ(cell_text(json(46023.5), FieldType::kFloat, SheetsDates::kSerialNumber), "46023.5");
  EXPECT_EQ(cell_text(json(46023.5), std::nullopt, SheetsDates::kSerialNumber), "46023.5");
  // FORMATTED_STRING: dates arrive as text; a number in a date field stays a number (and fails there).
  EXPECT_EQ(cell_text(json(46023.5), FieldType::kTimestamp, SheetsDates::kFormattedString), "46023.5");
  EXPECT_EQ(cell_text(json("2026-01-01 12:00:00"), FieldType::kTimestamp, SheetsDates::kFormattedString),
            "2026-01-01 12:00:00");
}

TEST(SheetsValues, IntegerValuedNumbersHaveNoFraction) {
  EXPECT_EQ(number_text(4915112345678.0), "4915112345678") << "a phone number stored as a number";
  EXPECT_EQ(number_text(42.0), "42");
  EXPECT_EQ(number_text(-3.0), "-3");
  EXPECT_EQ(number_text(0.0), "0");
  EXPECT_EQ(number_text(0.1), "0.1");
  EXPECT_EQ(number_text(1.5), "1.5");
  EXPECT_EQ(number_text(1.0 / 3.0), "0.3333333333333333");
  EXPECT_EQ(number_text(1e300), "1e+300");
  // JSON integers and JSON doubles with an integer value print alike, in every kind of field.
  for (const auto& cell : {json(4915112345678), json(4915112345678.0), json::parse("4915112345678.0")}) {
    EXPECT_EQ(cell_text(cell, FieldType::kText, SheetsDates::kSerialNumber), "4915112345678") << cell.dump();
  }
  EXPECT_EQ(cell_text(json::parse("9007199254740993"), FieldType::kText, SheetsDates::kSerialNumber),
            "9007199254740993") << "a JSON integer beyond 2^53 keeps every digit";
  // An integer-valued double for an int field is an int; 2.5 is not, and the mapper says so.
  EXPECT_EQ(coerced(FieldType::kInt, cell_text(json(42.0), FieldType::kInt, SheetsDates::kSerialNumber)).int_value(), 42);
  common::FieldConfig f;
  f.type = FieldType::kInt;
  std::string error;
  EXPECT_FALSE(common::coerce_text(f, cell_text(json(2.5), FieldType::kInt, SheetsDates::kSerialNumber), error));
  EXPECT_NE(error.find("2.5"), std::string::npos) << error;
  EXPECT_DOUBLE_EQ(coerced(FieldType::kFloat, cell_text(json(0.1), FieldType::kFloat, SheetsDates::kSerialNumber)).double_value(), 0.1);
}

TEST(SheetsValues, OtherCellsAsText) {
  EXPECT_EQ(cell_text(json(true), FieldType::kBool, SheetsDates::kSerialNumber), "true");
  EXPECT_EQ(cell_text(json(false), std::nullopt, SheetsDates::kSerialNumber), "false");
  EXPECT_EQ(cell_text(json(nullptr), FieldType::kInt, SheetsDates::kSerialNumber), "");
  EXPECT_EQ(cell_text(json("  Ann "), FieldType::kText, SheetsDates::kSerialNumber), "  Ann ");
  EXPECT_TRUE(coerced(FieldType::kBool, cell_text(json(true), FieldType::kBool, SheetsDates::kSerialNumber)).bool_value());
}

TEST(SheetsValues, A1RangesAndTheirWindows) {
  auto r = parse_a1("Leads!A1:H");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->sheet, "Leads");
  EXPECT_EQ(r->first_column, "A");
  EXPECT_EQ(r->last_column, "H");
  EXPECT_EQ(r->first_row, 1);
  EXPECT_FALSE(r->last_row);
  EXPECT_EQ(window_a1(*r, 1, 5000), "'Leads'!A1:H5000");
  r = parse_a1("'Bob''s leads'!b3:aa100");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->sheet, "Bob's leads");
  EXPECT_EQ(r->first_row, 3);
  EXPECT_EQ(*r->last_row, 100);
  EXPECT_EQ(window_a1(*r, 3, 10), "'Bob''s leads'!B3:AA10");
  r = parse_a1("Leads");
  ASSERT_TRUE(r);
  EXPECT_EQ(window_a1(*r, 1, 10), "'Leads'!1:10") << "a whole sheet is windowed by rows";
  r = parse_a1("A2:C");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->sheet, "");
  EXPECT_EQ(window_a1(*r, 2, 4), "A2:C4");
  for (const auto* bad : {"Leads!A1", "Leads!", "!A1:B", "Leads!A0:B", "Leads!A9:B3", "Leads!A1:B2:C"}) {
    EXPECT_FALSE(parse_a1(bad)) << bad;
  }
  EXPECT_EQ(*last_row_of("Leads!A1:H1000"), 1000);
  EXPECT_EQ(*last_row_of("'My!Sheet'!A5:H7"), 7);
  EXPECT_EQ(*last_row_of("Leads!A9"), 9);
  EXPECT_FALSE(last_row_of("Leads!A:H"));
}

}  // namespace
}  // namespace leadsync::producers::sheets
