// The `sources:` configuration: the common keys, the kinds and their own sections, the HTTP limits.
#include "common/source_config.h"

#include <gtest/gtest.h>

#include "common/config.h"
#include "common/errors.h"
#include "producers/registry.h"

namespace leadsync::common {
namespace {

const std::string kHead = R"(
entities:
  lead:
    key: lead_id
    fields:
      email: {type: text}
sources:
  - name: sheet
    entity: lead
    url: leads.csv
    key_column: id
    columns: {id: lead_id, Email: email}
)";

std::string error_of(const std::string& extra) {
  try {
    parse_config(kHead + extra);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(SourceConfig, TheCsvSourcesExistingKeysStayValidWithTheirDefaults) {
  const auto c = parse_config(kHead + "    kind: csv\n    on_missing: delete\n    allow_empty: false\n    schedule: 5m\n");
  const auto& s = c.sources.at(0);
  EXPECT_EQ(s.kind, "csv");
  EXPECT_EQ(s.schedule, std::chrono::minutes(5));
  ASSERT_TRUE(std::holds_alternative<CsvSettings>(s.settings));
  EXPECT_EQ(std::get<CsvSettings>(s.settings).encoding, TextEncoding::kUtf8);
  EXPECT_EQ(s.max_delete_fraction, 0.1);
  EXPECT_FALSE(s.allow_mass_delete);
  EXPECT_EQ(s.http.max_redirects, 5);
}

TEST(SourceConfig, AKindHasItsOwnValidatedSection) {
  const auto c = parse_config(kHead + "    csv: {encoding: cp1252}\n");
  EXPECT_EQ(std::get<CsvSettings>(c.sources.at(0).settings).encoding, TextEncoding::kCp1252);
  auto e = error_of("    csv: {encodng: cp1252}\n");
  EXPECT_NE(e.find("sources[0].csv.encodng"), std::string::npos) << e;
  EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
  e = error_of("    csv: {encoding: ebcdic}\n");
  EXPECT_NE(e.find("sources[0].csv.encoding"), std::string::npos) << e;
  EXPECT_NE(e.find("cp1252"), std::string::npos) << e;
}

TEST(SourceConfig, UnknownKindsAndKeysNameTheirPath) {
  auto e = error_of("    kind: gopher\n");
  EXPECT_NE(e.find("sources[0].kind"), std::string::npos) << e;
  EXPECT_NE(e.find("'gopher'"), std::string::npos) << e;
  e = error_of("    urll: x\n");
  EXPECT_NE(e.find("sources[0].urll"), std::string::npos) << e;
}

TEST(SourceConfig, ParsesHttpLimitsAndMassDeleteKeys) {
  const auto c = parse_config(kHead +
                              "    max_delete_fraction: 0.25\n    allow_mass_delete: true\n"
                              "    http: {connect_timeout: 2s, timeout: 30s, deadline: 2m, attempts: 3, "
                              "max_redirects: 1, max_bytes: 1000000}\n");
  const auto& s = c.sources.at(0);
  EXPECT_EQ(s.max_delete_fraction, 0.25);
  EXPECT_TRUE(s.allow_mass_delete);
  EXPECT_EQ(s.http.connect_timeout, std::chrono::seconds(2));
  EXPECT_EQ(s.http.attempt_timeout, std::chrono::seconds(30));
  EXPECT_EQ(s.http.deadline, std::chrono::minutes(2));
  EXPECT_EQ(s.http.max_attempts, 3);
  EXPECT_EQ(s.http.max_redirects, 1);
  EXPECT_EQ(s.http.max_body_bytes, 1'000'000u);
  EXPECT_NE(error_of("    max_delete_fraction: 1.5\n").find("sources[0].max_delete_fraction"), std::string::npos);
  EXPECT_NE(error_of("    http: {deadline: soon}\n").find("sources[0].http.deadline"), std::string::npos);
  EXPECT_NE(error_of("    http: {retries: 2}\n").find("sources[0].http.retries"), std::string::npos);
}

TEST(SourceConfig, R20_SourceNamesUseASafeCharset) {
  for (const auto* bad : {"../etc", "a/b", "with space", "-dash-first", ".hidden", "tab\tname", "nul\\x00"}) {
    auto yaml = kHead;
    yaml.replace(yaml.find("name: sheet"), 11, std::string("name: \"") + bad + "\"");
    try {
      parse_config(yaml);
      ADD_FAILURE() << "accepted source name " << bad;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("sources[0].name"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(parse_config(kHead).sources.at(0).name, "sheet");
  EXPECT_TRUE(valid_source_name("sales-sheet_2.v1"));
}

TEST(SourceConfig, TheRegistryBuildsTheAdapterOfEveryKind) {
  const auto c = parse_config(kHead);
  EXPECT_NE(producers::make_adapter(c.sources.at(0), "/tmp"), nullptr);
}

}  // namespace
}  // namespace leadsync::common
