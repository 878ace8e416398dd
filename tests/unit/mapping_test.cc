// Coercion of raw cells into typed values, checksums, event ids and value checks (R2, R6).
#include <gtest/gtest.h>

#include "common/mapping.h"
#include "common/text_encoding.h"
#include "workers/targets/entity_applier.h"

namespace leadsync::common {
namespace {

FieldConfig field(FieldType t, bool required = false, Normalize n = Normalize::kNone) {
  FieldConfig f;
  f.name = "f";
  f.type = t;
  f.required = required;
  f.normalize = n;
  return f;
}

Value coerce_ok(const FieldConfig& f, std::string_view raw) {
  std::string error;
  auto v = coerce_text(f, raw, error);
  EXPECT_TRUE(v.has_value()) << raw << ": " << error;
  return v.value_or(Value{});
}

std::string coerce_error(const FieldConfig& f, std::string_view raw) {
  std::string error;
  EXPECT_FALSE(coerce_text(f, raw, error).has_value()) << raw;
  return error;
}

TEST(Mapping, NormalisesEmails) {
  EXPECT_EQ(coerce_ok(field(FieldType::kText, true, Normalize::kLowerTrim), "  Ann.Lee@Example.COM ").string_value(),
            "ann.lee@example.com");
}

TEST(Mapping, EmptyCellsAreNullAndRequiredOnesAreRejectedByName) {
  EXPECT_EQ(coerce_ok(field(FieldType::kInt), "").kind_case(), Value::kNullValue);
  EXPECT_EQ(coerce_ok(field(FieldType::kText), "").kind_case(), Value::kNullValue);
  const auto e = coerce_error(field(FieldType::kText, true, Normalize::kTrim), "   ");
  EXPECT_NE(e.find("field 'f' is required"), std::string::npos) << e;
}

TEST(Mapping, CoercesNumbersAndRejectsGarbageWithTheValue) {
  EXPECT_EQ(coerce_ok(field(FieldType::kInt), " 42 ").int_value(), 42);
  EXPECT_EQ(coerce_ok(field(FieldType::kInt), "-7").int_value(), -7);
  EXPECT_EQ(coerce_ok(field(FieldType::kInt), "42.0").int_value(), 42);
  EXPECT_DOUBLE_EQ(coerce_ok(field(FieldType::kFloat), "1.25").double_value(), 1.25);
  const auto e = coerce_error(field(FieldType::kInt), "forty");
  EXPECT_NE(e.find("expects an integer"), std::string::npos);
  EXPECT_NE(e.find("'forty'"), std::string::npos);
  coerce_error(field(FieldType::kInt), "4.5");
  coerce_error(field(FieldType::kFloat), "nan");
}

TEST(Mapping, CoercesBooleans) {
  EXPECT_TRUE(coerce_ok(field(FieldType::kBool), "TRUE").bool_value());
  EXPECT_FALSE(coerce_ok(field(FieldType::kBool), "no").bool_value());
  coerce_error(field(FieldType::kBool), "perhaps");
}

TEST(Mapping, ParsesTimestampsInSpreadsheetAndIsoForms) {
  const int64_t base = 1767323045LL * 1'000'000;  // 2026-01-02 03:04:05 UTC
  EXPECT_EQ(parse_timestamp_micros("2026-01-02 03:04:05"), base);
  EXPECT_EQ(parse_timestamp_micros("2026-01-02T03:04:05Z"), base);
  EXPECT_EQ(parse_timestamp_micros("2026-01-02T03:04:05.5Z"), base + 500'000);
  EXPECT_EQ(parse_timestamp_micros("2026-01-02T05:04:05+02:00"), base);
  EXPECT_EQ(parse_timestamp_micros("2026-01-02 03:04:05.000000+00"), base);
  EXPECT_EQ(parse_timestamp_micros("2026-01-02"), base - (3 * 3600 + 4 * 60 + 5) * 1'000'000LL);
  EXPECT_FALSE(parse_timestamp_micros("2026-02-30"));
  EXPECT_FALSE(parse_timestamp_micros("02/01/2026"));
  EXPECT_FALSE(parse_timestamp_micros("2026-01-02 25:00:00"));
  EXPECT_EQ(format_timestamp_micros(base + 5), "2026-01-02 03:04:05.000005+00");
  EXPECT_EQ(format_date(base), "2026-01-02");
}

TEST(Mapping, SplitsListCellsAndWrapsAScalar) {
  auto f = field(FieldType::kTextList, false, Normalize::kLowerTrim);
  const auto list = coerce_ok(f, "Web, referral ,, Fiera");
  ASSERT_EQ(list.string_list().values_size(), 3);
  EXPECT_EQ(list.string_list().values(0), "web");
  EXPECT_EQ(list.string_list().values(2), "fiera");
  EXPECT_EQ(coerce_ok(f, "aimedici").string_list().values_size(), 1);  // a scalar becomes a list of one
  EXPECT_EQ(coerce_ok(f, "").string_list().values_size(), 0);
  f.required = true;
  EXPECT_NE(coerce_error(f, " , ").find("list is empty"), std::string::npos);
}

TEST(Mapping, ChecksumIsOrderIndependentAndSeesEveryChange) {
  FieldMap a, b;
  a["x"].set_string_value("1");
  a["y"].set_int_value(2);
  b["y"].set_int_value(2);
  b["x"].set_string_value("1");
  EXPECT_EQ(fields_checksum(a), fields_checksum(b));
  b["x"].set_string_value("2");
  EXPECT_NE(fields_checksum(a), fields_checksum(b));
  // Same text, different type: different content.
  FieldMap c, d;
  c["x"].set_string_value("2");
  d["x"].set_json_value("2");
  EXPECT_NE(fields_checksum(c), fields_checksum(d));
  // A NULL is not an empty string.
  FieldMap e, f;
  e["x"].set_null_value(true);
  f["x"].set_string_value("");
  EXPECT_NE(fields_checksum(e), fields_checksum(f));
}

TEST(Mapping, EventIdsAreDeterministic) {
  const auto id = make_event_id("s", "lead", "L-1", 10, 99);
  EXPECT_EQ(id.size(), 32u);
  EXPECT_EQ(id, make_event_id("s", "lead", "L-1", 10, 99));
  EXPECT_NE(id, make_event_id("s", "lead", "L-1", 11, 99));
  EXPECT_NE(id, make_event_id("s", "lead", "L-2", 10, 99));
  // Length prefixes keep ("ab","c") apart from ("a","bc").
  EXPECT_NE(make_event_id("ab", "c", "k", 1, 1), make_event_id("a", "bc", "k", 1, 1));
}

TEST(Mapping, ChecksValuesFromForeignProducers) {
  auto f = field(FieldType::kInt, true);
  Value v;
  v.set_string_value("12");
  EXPECT_NE(check_value(f, v).find("typed int"), std::string::npos);
  v.set_null_value(true);
  EXPECT_NE(check_value(f, v).find("required"), std::string::npos);
  v.set_int_value(3);
  EXPECT_EQ(check_value(f, v), "");
  auto text = field(FieldType::kText, true);
  Value empty;
  empty.set_string_value("");
  EXPECT_NE(check_value(text, empty).find("required but is empty"), std::string::npos);
  auto g = field(FieldType::kFloat);
  EXPECT_EQ(check_value(g, v), "");  // an int is a valid float
}

TEST(Mapping, RoundTripsSqlTextOfEveryType) {
  // What the worker writes (sql_text) reads back (value_from_sql_text) as the same value.
  struct Case {
    FieldType type;
    std::string raw;
  };
  const Case cases[] = {{FieldType::kText, "Müller, \"Co\""},
                        {FieldType::kInt, "-12"},
                        {FieldType::kFloat, "0.1"},
                        {FieldType::kBool, "true"},
                        {FieldType::kTimestamp, "2026-03-04 05:06:07.123456"},
                        {FieldType::kDate, "2026-03-04"}};
  for (const auto& c : cases) {
    const auto f = field(c.type);
    const auto v = coerce_ok(f, c.raw);
    const auto text = workers::sql_text(f, v);
    ASSERT_TRUE(text) << c.raw;
    const auto back = value_from_sql_text(f, *text);
    ASSERT_TRUE(back) << *text;
    EXPECT_TRUE(same_value(v, *back)) << c.raw << " -> " << *text;
  }
  const auto lf = field(FieldType::kTextList);
  const auto back = value_from_sql_text(lf, R"({web,"a b","c,d","q\"uote"})");
  ASSERT_TRUE(back);
  ASSERT_EQ(back->string_list().values_size(), 4);
  EXPECT_EQ(back->string_list().values(2), "c,d");
  EXPECT_EQ(back->string_list().values(3), "q\"uote");
}


}  // namespace
}  // namespace leadsync::common

namespace leadsync::common {
namespace {

TEST(Mapping, AnEmptyArrayReadsBackAsAnEmptyList) {
  FieldConfig f;
  f.name = "tags";
  f.type = FieldType::kTextList;
  std::string error;
  const auto from_source = coerce_text(f, "", error);
  const auto from_db = value_from_sql_text(f, "{}");
  ASSERT_TRUE(from_source && from_db);
  EXPECT_EQ(from_db->kind_case(), Value::kStringList);
  EXPECT_TRUE(same_value(*from_source, *from_db));
}


TEST(Mapping, R2_RejectsDoubleSignsYearZeroAndInvalidJsonAsRowErrors) {
  for (const auto* raw : {"+-5", "-+5", "++5", "+-5.0"}) {
    EXPECT_NE(coerce_error(field(FieldType::kInt), raw).find("expects an integer"), std::string::npos) << raw;
    EXPECT_NE(coerce_error(field(FieldType::kFloat), raw).find("expects a number"), std::string::npos) << raw;
  }
  EXPECT_EQ(coerce_ok(field(FieldType::kInt), "+5").int_value(), 5);
  EXPECT_EQ(coerce_ok(field(FieldType::kFloat), "-2.5").double_value(), -2.5);
  // PostgreSQL has no year 0 (1 BC is year 0 nowhere in its input): the producer says so, not the worker.
  EXPECT_NE(coerce_error(field(FieldType::kDate), "0000-01-01").find("expects a date"), std::string::npos);
  EXPECT_NE(coerce_error(field(FieldType::kTimestamp), "0000-03-01 10:00:00").find("expects a timestamp"),
            std::string::npos);
  EXPECT_EQ(coerce_ok(field(FieldType::kDate), "0001-01-01").timestamp_micros(),
            *parse_timestamp_micros("0001-01-01T00:00:00Z"));
  for (const auto* raw : {"{", "{\"a\":}", "[1,2", "not json", "{'a': 1}", "{\"a\":1} trailing"}) {
    EXPECT_NE(coerce_error(field(FieldType::kJson), raw).find("expects JSON"), std::string::npos) << raw;
  }
  EXPECT_EQ(coerce_ok(field(FieldType::kJson), R"( {"a": [1, 2.5, "x", null, true]} )").json_value(),
            R"({"a": [1, 2.5, "x", null, true]})");
  EXPECT_EQ(coerce_ok(field(FieldType::kJson), "42").json_value(), "42");
}

TEST(Mapping, R14_ErrorTextsCutLongValuesBetweenCharacters) {
  std::string euros;
  for (int i = 0; i < 50; ++i) euros += "\xE2\x82\xAC";  // 3 bytes each: 80 bytes fall inside one
  const auto error = coerce_error(field(FieldType::kInt), euros);
  EXPECT_EQ(invalid_text_at(error), std::string::npos) << "the error text is not valid UTF-8";
  EXPECT_NE(error.find("\xE2\x82\xAC\xE2\x80\xA6'"), std::string::npos) << "cut after a whole character, then …";
}

}  // namespace
}  // namespace leadsync::common
