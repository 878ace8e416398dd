// Config validation: every error names the key path and what was expected.
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/errors.h"

namespace leadsync::common {
namespace {

const char* kValid = R"(
kafka:
  brokers: 127.0.0.1:9092
  partitions: 6
  retry: {attempts: 2, base_ms: 100, max_ms: 400}
postgres:
  url: postgresql://localhost/leadsync
entities:
  lead:
    table: leads
    key: lead_id
    match_on: [email]
    audit: true
    fields:
      email:        {type: text, required: true, normalize: lower_trim}
      lead_sources: {type: text_list, coerce: wrap_scalar}
      score:        {type: int}
sources:
  - name: sales-sheet
    kind: csv
    entity: lead
    url: leads.csv
    key_column: "Lead ID"
    columns: {"Lead ID": lead_id, "Email": email, "Lead sources": lead_sources, "Score": score}
    schedule: 30s
)";

std::string error_of(const std::string& yaml) {
  try {
    parse_config(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const auto pos = s.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return s.replace(pos, from.size(), to);
}

TEST(Config, ParsesAValidConfigWithDefaults) {
  const auto c = parse_config(kValid);
  EXPECT_EQ(c.kafka.partitions, 6);
  EXPECT_EQ(c.kafka.topic, "leadsync.changes");
  EXPECT_EQ(c.kafka.retry.attempts, 2);
  EXPECT_EQ(c.kafka.retry_topic(2), "leadsync.changes.retry.2");
  const auto& lead = c.entity("lead");
  ASSERT_EQ(lead.fields.size(), 3u);
  EXPECT_EQ(lead.fields[0].name, "email");
  EXPECT_EQ(lead.fields[0].normalize, Normalize::kLowerTrim);
  EXPECT_TRUE(lead.fields[0].required);
  EXPECT_EQ(lead.fields[1].type, FieldType::kTextList);
  ASSERT_EQ(c.sources.size(), 1u);
  EXPECT_EQ(c.sources[0].schedule, std::chrono::seconds(30));
  EXPECT_EQ(c.sources[0].columns.size(), 4u);
}

TEST(Config, RejectsUnknownKeysNamingTheirPath) {
  const auto e = error_of(replace(kValid, "audit: true", "audit: true\n    auditt: false"));
  EXPECT_NE(e.find("entities.lead.auditt"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
}

TEST(Config, RejectsAnUnknownFieldTypeListingTheChoices) {
  const auto e = error_of(replace(kValid, "{type: int}", "{type: integer}"));
  EXPECT_NE(e.find("entities.lead.fields.score.type"), std::string::npos) << e;
  EXPECT_NE(e.find("'integer'"), std::string::npos) << e;
  EXPECT_NE(e.find("text_list"), std::string::npos) << e;
}

TEST(Config, RejectsAColumnMappedToAnUndefinedField) {
  const auto e = error_of(replace(kValid, "\"Score\": score", "\"Score\": scoring"));
  EXPECT_NE(e.find("sources[0].columns.Score"), std::string::npos) << e;
  EXPECT_NE(e.find("'scoring'"), std::string::npos) << e;
}

TEST(Config, RejectsASourceForAnUndefinedEntity) {
  const auto e = error_of(replace(kValid, "entity: lead", "entity: buyer"));
  EXPECT_NE(e.find("sources[0].entity"), std::string::npos) << e;
  EXPECT_NE(e.find("'buyer'"), std::string::npos) << e;
}

TEST(Config, RejectsAFieldThatNoColumnMaps) {
  // A field left unmapped would be silently nulled on every full event (R6).
  const auto e = error_of(replace(kValid, ", \"Score\": score", ""));
  EXPECT_NE(e.find("field 'score'"), std::string::npos) << e;
  EXPECT_NE(e.find("not mapped"), std::string::npos) << e;
}

TEST(Config, RejectsWrongValueTypesAndRanges) {
  EXPECT_NE(error_of(replace(kValid, "partitions: 6", "partitions: six")).find("kafka.partitions"), std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "partitions: 6", "partitions: 0")).find("out of range"), std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "max_ms: 400", "max_ms: 50")).find("kafka.retry.max_ms"), std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "audit: true", "audit: maybe")).find("entities.lead.audit"), std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "schedule: 30s", "schedule: soon")).find("sources[0].schedule"),
            std::string::npos);
}

TEST(Config, RejectsUnsafeIdentifiers) {
  const auto e = error_of(replace(kValid, "table: leads", "table: \"leads; drop table x\""));
  EXPECT_NE(e.find("entities.lead.table"), std::string::npos) << e;
  EXPECT_NE(e.find("not a valid name"), std::string::npos) << e;
}

TEST(Config, RejectsMissingRequiredKeys) {
  EXPECT_NE(error_of(replace(kValid, "    key: lead_id\n", "")).find("entities.lead.key: is required"),
            std::string::npos);
  EXPECT_NE(error_of(replace(kValid, "    key_column: \"Lead ID\"\n", "")).find("sources[0].key_column"),
            std::string::npos);
}

TEST(Config, ReportsInvalidYamlWithItsLine) {
  const auto e = error_of("kafka:\n  brokers: [unclosed\n");
  EXPECT_NE(e.find("invalid YAML at line"), std::string::npos) << e;
}

TEST(Config, ParsesDurations) {
  EXPECT_EQ(parse_duration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(parse_duration("2m"), std::chrono::milliseconds(120'000));
  EXPECT_EQ(parse_duration("1h"), std::chrono::milliseconds(3'600'000));
  EXPECT_FALSE(parse_duration("5"));
  EXPECT_FALSE(parse_duration("s"));
  EXPECT_FALSE(parse_duration("5 days"));
}

}  // namespace
}  // namespace leadsync::common
