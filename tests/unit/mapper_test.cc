// The producer's mapper on its hot path (issue 12): one event reused for every record must carry
// exactly what a fresh event would — same fields, same checksum (R9), nothing left over from the
// record before, a failed one or another mapping — and the pre-sorted checksum equals the general one.
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/mapping.h"
#include "producers/mapper.h"

namespace leadsync::producers {
namespace {

const char* kConfig = R"(
entities:
  lead:
    table: leads
    key: lead_id
    fields:
      email: {type: text, normalize: lower_trim}
      status: {type: text, normalize: lower_trim}
      tags: {type: text_list, normalize: lower_trim}
      employees: {type: int}
      revenue: {type: float}
      updated_at: {type: timestamp}
      priority: {type: int, role: rules}
      segment: {type: text, role: rules}
    scoring:
      field: priority
      rules:
        - {name: big, points: 10, when: {field: employees, gte: 100}}
    segments:
      field: segment
      rules:
        - {name: hot, when: {field: priority, gte: 10}}
sources:
  - name: s
    kind: csv
    entity: lead
    url: /tmp/x.csv
    key_column: id
    columns: {id: lead_id, email: email, status: status, tags: tags, employees: employees, revenue: revenue,
              updated_at: updated_at}
)";

class Columns : public SourceAdapter {
 public:
  std::string open() override { return ""; }
  const std::vector<std::string>& columns() const override { return names_; }
  std::vector<std::string> column_warnings() const override { return {}; }
  bool is_duplicate_column(const std::string&) const override { return false; }
  bool next(SourceRecord&, std::optional<std::string>&) override { return false; }
  double progress() const override { return 0; }

 private:
  std::vector<std::string> names_{"id", "email", "status", "tags", "employees", "revenue", "updated_at"};
};

SourceRecord row(std::size_t line, std::vector<std::string> cells) {
  SourceRecord r;
  r.position = line;
  r.cells = std::move(cells);
  return r;
}

std::vector<SourceRecord> rows() {
  return {row(2, {"a1", " Ann@Acme.com ", "Qualified", "x,y", "250", "1.5", "2026-01-02"}),
          row(3, {"a2", "bob@b.com", "", "", "3", "", ""}),
          row(4, {"a3", "c@c.com", "new", "z", "not a number", "", ""}),  // fails at employees
          row(5, {"a4", "", "", "", "", "", ""}),                          // empty cells: nulls
          row(6, {"", "no key"}),                                          // fails: no key
          row(7, {"a5", "e@e.com", "lost", "p,q,r", "1000", "-0", "2026-03-04 05:06:07"}),
          row(8, {"a6"})};  // ragged: the missing cells are empty
}

TEST(Mapper, R9_AReusedEventCarriesExactlyWhatAFreshEventWouldForEveryRecord) {
  const auto config = common::parse_config(kConfig);
  const auto& source = config.sources.at(0);
  Columns columns;
  const Mapper mapper(source, config.entity(source.entity), columns);
  common::ChangeEvent reused;
  reused.set_run_id("left over");
  reused.set_event_id("left over");
  reused.set_source_version(7);
  (*reused.mutable_fields())["not_a_field"].set_string_value("left over");  // another mapping's event
  int mapped = 0;
  for (const auto& record : rows()) {
    common::ChangeEvent fresh;
    RowError fresh_error, reused_error;
    const bool ok = mapper.map(record, fresh, fresh_error);
    ASSERT_EQ(mapper.map(record, reused, reused_error), ok) << "line " << record.position;
    if (!ok) {
      EXPECT_EQ(reused_error.message, fresh_error.message);
      EXPECT_EQ(reused_error.column, fresh_error.column);
      continue;
    }
    ++mapped;
    std::string a, b;
    ASSERT_TRUE(fresh.SerializeToString(&a));
    ASSERT_TRUE(reused.SerializeToString(&b));
    EXPECT_EQ(reused.fields_size(), fresh.fields_size()) << "line " << record.position;
    EXPECT_FALSE(reused.fields().contains("not_a_field"));
    EXPECT_EQ(reused.run_id(), "");
    EXPECT_EQ(reused.event_id(), "");
    EXPECT_EQ(reused.source_version(), 0);
    EXPECT_EQ(reused.key(), fresh.key());
    EXPECT_EQ(reused.checksum(), fresh.checksum());
    EXPECT_EQ(reused.checksum(), common::fields_checksum(reused.fields()));
    // The same map content: the checksum covers every field by name, type and value.
    for (const auto& [name, value] : fresh.fields()) {
      ASSERT_TRUE(reused.fields().contains(name)) << name;
      EXPECT_TRUE(common::same_value(reused.fields().at(name), value)) << name << " line " << record.position;
    }
  }
  EXPECT_EQ(mapped, 5);
}

TEST(Mapper, R9_ThePreSortedChecksumEqualsTheGeneralOneAndFallsBackForOtherNames) {
  common::FieldMap fields;
  fields["b"].set_string_value("x");
  fields["a"].set_int_value(3);
  fields["c"].mutable_string_list()->add_values("y");
  std::string scratch;
  EXPECT_EQ(common::fields_checksum(fields, {"a", "b", "c"}, scratch), common::fields_checksum(fields));
  EXPECT_EQ(common::fields_checksum(fields, {"a", "b", "d"}, scratch), common::fields_checksum(fields));
  EXPECT_EQ(common::fields_checksum(fields, {"a", "b"}, scratch), common::fields_checksum(fields));
  fields["b"].set_string_value("z");
  EXPECT_EQ(common::fields_checksum(fields, {"a", "b", "c"}, scratch), common::fields_checksum(fields));
}

// In-place coercion (the hot path's coerce_text_into) into a value that held any other kind, or the
// same kind with other content, gives byte for byte the value coerce_text gives, and the same error.
TEST(Mapper, R2_CoercionInPlaceEqualsAFreshCoercionWhateverTheValueHeldBefore) {
  using common::FieldType;
  using common::Normalize;
  std::vector<common::FieldConfig> fields;
  for (const auto type : {FieldType::kText, FieldType::kInt, FieldType::kFloat, FieldType::kBool,
                          FieldType::kTimestamp, FieldType::kDate, FieldType::kJson, FieldType::kTextList}) {
    for (const auto normalize : {Normalize::kNone, Normalize::kTrim, Normalize::kLower, Normalize::kLowerTrim}) {
      for (const bool required : {false, true}) {
        common::FieldConfig f;
        f.name = "f";
        f.type = type;
        f.normalize = normalize;
        f.required = required;
        fields.push_back(f);
      }
    }
  }
  const std::vector<std::string> raws = {"", " ", "  Ann@ACME.com ", "ÄÖ Straße", "42", " -7 ", "42.0", "+-5", "1.5",
                                         "-0", "yes", "FALSE", "2026-01-02", "2026-01-02 03:04:05.5+02:00",
                                         "[1, 2]", "{\"a\": 1}", "a, B ,,c", "x,y,z,w,v"};
  std::vector<common::Value> before(8);
  before[1].set_null_value(true);
  before[2].set_string_value(std::string(100, 'z'));
  before[3].set_int_value(5);
  before[4].set_double_value(2.5);
  before[5].set_bool_value(true);
  before[6].set_timestamp_micros(9);
  for (const auto* item : {"p", "q", "r", "s", "t", "u"}) before[7].mutable_string_list()->add_values(item);
  int checked = 0;
  for (const auto& f : fields) {
    for (const auto& raw : raws) {
      std::string fresh_error;
      const auto fresh = common::coerce_text(f, raw, fresh_error);
      for (const auto& held : before) {
        common::Value slot = held;
        std::string error;
        ASSERT_EQ(common::coerce_text_into(f, raw, slot, error), fresh.has_value()) << raw;
        EXPECT_EQ(error, fresh_error) << raw;
        if (!fresh) continue;
        EXPECT_EQ(slot.SerializeAsString(), fresh->SerializeAsString())
            << "type " << static_cast<int>(f.type) << " normalize " << static_cast<int>(f.normalize) << " raw '"
            << raw << "' over " << common::describe_value(held);
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 1000);
}

// A mapping without rules keeps slots into the reused event's field map: every record, after
// failures and after an event that held another mapping's fields, carries exactly what a fresh
// event would, and the checksum computed through the slots is the general one (R9).
TEST(Mapper, R9_AnEventReusedWithSlotsCarriesExactlyWhatAFreshEventWould) {
  std::string text = kConfig;
  text = text.substr(0, text.find("    scoring:")) + text.substr(text.find("sources:"));
  for (const auto* line : {"      priority: {type: int, role: rules}\n", "      segment: {type: text, role: rules}\n"}) {
    text.erase(text.find(line), std::string(line).size());
  }
  const auto config = common::parse_config(text);
  const auto& source = config.sources.at(0);
  Columns columns;
  const Mapper mapper(source, config.entity(source.entity), columns);
  common::ChangeEvent reused;
  std::vector<common::Value*> slots;
  int mapped = 0;
  for (int pass = 0; pass < 3; ++pass) {
    if (pass == 2) {  // another mapping's event with as many fields: nothing of it may stay
      reused.mutable_fields()->clear();
      slots.clear();
      for (const auto* name : {"a", "b", "c", "d", "e", "f"}) (*reused.mutable_fields())[name].set_string_value("x");
    }
    for (const auto& record : rows()) {
      common::ChangeEvent fresh;
      RowError fresh_error, reused_error;
      const bool ok = mapper.map(record, fresh, fresh_error);
      ASSERT_EQ(mapper.map(record, reused, reused_error, slots), ok) << "line " << record.position;
      if (!ok) {
        EXPECT_EQ(reused_error.message, fresh_error.message);
        continue;
      }
      ++mapped;
      EXPECT_EQ(slots.size(), 6u);
      EXPECT_EQ(reused.fields_size(), fresh.fields_size()) << "line " << record.position;
      EXPECT_EQ(reused.checksum(), fresh.checksum()) << "line " << record.position;
      EXPECT_EQ(reused.checksum(), common::fields_checksum(reused.fields()));
      for (const auto& [name, value] : fresh.fields()) {
        ASSERT_TRUE(reused.fields().contains(name)) << name;
        EXPECT_EQ(reused.fields().at(name).SerializeAsString(), value.SerializeAsString()) << name;
      }
    }
  }
  EXPECT_EQ(mapped, 15);
}

}  // namespace
}  // namespace leadsync::producers
