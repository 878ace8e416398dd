// kind: firestore without a server: the REST encoding of typed values decoded exactly (sources.md
// "Firestore REST"), field paths through maps, the `firestore:` config section, and what the mapper
// makes of a typed value that does not fit its field (R2: coerce rule or a row error naming the
// document and the field, never half-applied).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "common/config.h"
#include "common/errors.h"
#include "producers/firestore/firestore_client.h"
#include "producers/firestore/firestore_value.h"
#include "producers/mapper.h"

namespace leadsync::producers {
namespace {

using common::Value;
using nlohmann::json;

Value decode(const std::string& typed_json) {
  std::string error;
  auto v = firestore::decode_value(json::parse(typed_json), "f", error);
  if (!v) ADD_FAILURE() << typed_json << ": " << error;
  return v ? *v : Value();
}

std::string decode_error(const std::string& typed_json) {
  std::string error;
  const auto v = firestore::decode_value(json::parse(typed_json), "address.city", error);
  EXPECT_FALSE(v.has_value()) << typed_json;
  return error;
}

TEST(FirestoreValue, ScalarsDecodeToTheirWireTypes) {
  EXPECT_TRUE(decode(R"({"nullValue": null})").null_value());
  EXPECT_TRUE(decode(R"({"booleanValue": true})").bool_value());
  EXPECT_FALSE(decode(R"({"booleanValue": false})").bool_value());
  EXPECT_EQ(decode(R"({"stringValue": "Ann"})").string_value(), "Ann");
  EXPECT_EQ(decode(R"({"doubleValue": 1.5})").double_value(), 1.5);
  EXPECT_EQ(decode(R"({"doubleValue": 2})").double_value(), 2.0);
  EXPECT_TRUE(std::isnan(decode(R"({"doubleValue": "NaN"})").double_value()));
  EXPECT_EQ(decode(R"({"doubleValue": "-Infinity"})").double_value(), -std::numeric_limits<double>::infinity());
}

TEST(FirestoreValue, Int64ArrivesAsAStringAndKeepsEveryDigit) {
  EXPECT_EQ(decode(R"({"integerValue": "42"})").int_value(), 42);
  EXPECT_EQ(decode(R"({"integerValue": "-9223372036854775808"})").int_value(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(decode(R"({"integerValue": "9223372036854775807"})").int_value(), std::numeric_limits<int64_t>::max());
  EXPECT_NE(decode_error(R"({"integerValue": "9223372036854775808"})").find("64-bit"), std::string::npos);
  EXPECT_NE(decode_error(R"({"integerValue": "4x"})").find("integerValue"), std::string::npos);
}

TEST(FirestoreValue, TimestampsAreTruncatedToMicroseconds) {
  const auto base = *common::parse_timestamp_micros("2026-01-02T03:04:05Z");
  EXPECT_EQ(decode(R"({"timestampValue": "2026-01-02T03:04:05.123456789Z"})").timestamp_micros(), base + 123456);
  EXPECT_EQ(decode(R"({"timestampValue": "2026-01-02T03:04:05.1Z"})").timestamp_micros(), base + 100000);
  EXPECT_EQ(decode(R"({"timestampValue": "2026-01-02T03:04:05Z"})").timestamp_micros(), base);
  EXPECT_EQ(decode(R"({"timestampValue": "1969-12-31T23:59:59.999999999Z"})").timestamp_micros(), -1);
  EXPECT_NE(decode_error(R"({"timestampValue": "2026-01-02"})").find("RFC 3339"), std::string::npos);
}

TEST(FirestoreValue, ArraysOfStringsAreListsAndTheEmptyArrayIsAnEmptyList) {
  const auto list = decode(R"({"arrayValue": {"values": [{"stringValue": "aimedici"}, {"stringValue": "web"}]}})");
  ASSERT_EQ(list.kind_case(), Value::kStringList);
  EXPECT_EQ(list.string_list().values_size(), 2);
  EXPECT_EQ(list.string_list().values(0), "aimedici");
  const auto empty = decode(R"({"arrayValue": {}})");
  ASSERT_EQ(empty.kind_case(), Value::kStringList);
  EXPECT_EQ(empty.string_list().values_size(), 0);
  const auto mixed = decode(R"({"arrayValue": {"values": [{"stringValue": "a"}, {"integerValue": "7"}]}})");
  ASSERT_EQ(mixed.kind_case(), Value::kJsonValue);
  EXPECT_EQ(json::parse(mixed.json_value()), json::parse(R"(["a", 7])"));
}

TEST(FirestoreValue, MapsGeoPointsReferencesAndBytes) {
  const auto map = decode(R"({"mapValue": {"fields": {"city": {"stringValue": "Rome"}, "zip": {"integerValue": "100"},
      "at": {"timestampValue": "2026-01-02T03:04:05Z"}, "tags": {"arrayValue": {}}, "none": {"nullValue": null}}}})");
  ASSERT_EQ(map.kind_case(), Value::kJsonValue);
  EXPECT_EQ(json::parse(map.json_value()),
            json::parse(R"({"city": "Rome", "zip": 100, "at": "2026-01-02T03:04:05Z", "tags": [], "none": null})"));
  EXPECT_EQ(json::parse(decode(R"({"mapValue": {}})").json_value()), json::object());
  const auto geo = decode(R"({"geoPointValue": {"latitude": 41.9, "longitude": 12.5}})");
  EXPECT_EQ(json::parse(geo.json_value()), json::parse(R"({"latitude": 41.9, "longitude": 12.5})"));
  EXPECT_EQ(decode(R"({"referenceValue": "projects/p/databases/(default)/documents/agents/a2"})").string_value(),
            "agents/a2");
  EXPECT_EQ(decode(R"({"bytesValue": "AAE="})").string_value(), "AAE=");
}

TEST(FirestoreValue, AMalformedValueIsAnErrorNamingTheField) {
  const auto e = decode_error(R"({"stringValue": "a", "integerValue": "1"})");
  EXPECT_NE(e.find("address.city"), std::string::npos) << e;
  EXPECT_NE(decode_error(R"({"pointerValue": "x"})").find("unknown value type 'pointerValue'"), std::string::npos);
  EXPECT_NE(decode_error(R"({"booleanValue": "yes"})").find("booleanValue"), std::string::npos);
}

TEST(FirestoreValue, FieldPathsFollowMapsUnlessADottedNameExists) {
  const auto fields = json::parse(R"({
    "address": {"mapValue": {"fields": {"city": {"stringValue": "Rome"}}}},
    "a.b": {"stringValue": "literal"},
    "a": {"mapValue": {"fields": {"b": {"stringValue": "nested"}}}},
    "n": {"integerValue": "1"}})");
  ASSERT_NE(firestore::find_field(fields, "address.city"), nullptr);
  EXPECT_EQ((*firestore::find_field(fields, "address.city"))["stringValue"], "Rome");
  EXPECT_EQ((*firestore::find_field(fields, "a.b"))["stringValue"], "literal");
  EXPECT_EQ(firestore::find_field(fields, "address.zip"), nullptr);
  EXPECT_EQ(firestore::find_field(fields, "n.x"), nullptr);  // not a map
  EXPECT_EQ(firestore::find_field(fields, "missing"), nullptr);
}

TEST(FirestoreValue, DocumentNamesAndPathSegments) {
  EXPECT_EQ(firestore::document_path("projects/p/databases/(default)/documents/teams/t1/agents/a1"),
            "teams/t1/agents/a1");
  EXPECT_EQ(firestore::last_segment("projects/p/databases/(default)/documents/agents/uid-9"), "uid-9");
  EXPECT_EQ(firestore::escape_segment("(default)"), "(default)");
  EXPECT_EQ(firestore::escape_segment("a b/c?"), "a%20b%2Fc%3F");
}

TEST(FirestoreValue, R7_VerifyComparesAMapStoredAsJsonbByContentNotByText) {
  const auto map = decode(R"({"mapValue": {"fields": {"city": {"stringValue": "Milano"}, "zip": {"integerValue": "20121"}}}})");
  // What PostgreSQL's jsonb prints back for the same document: its own key order and spacing.
  const auto stored = common::value_from_sql_text(
      common::FieldConfig{.name = "address", .type = common::FieldType::kJson}, R"({"zip": 20121, "city": "Milano"})");
  ASSERT_TRUE(stored.has_value());
  EXPECT_TRUE(common::same_value(map, *stored));
  const auto other = common::value_from_sql_text(
      common::FieldConfig{.name = "address", .type = common::FieldType::kJson}, R"({"zip": 20122, "city": "Milano"})");
  EXPECT_FALSE(common::same_value(map, *other));
}

// ------------------------------------------------------------------ configuration

const std::string kConfig = R"(
entities:
  agent:
    key: agent_id
    fields:
      email: {type: text, normalize: lower_trim}
      lead_sources: {type: text_list}
sources:
  - name: admin
    kind: firestore
    entity: agent
    key_column: __name__
    columns: {__name__: agent_id, email: email, leadSources: lead_sources}
)";

std::string config_error(const std::string& section) {
  try {
    common::parse_config(kConfig + section);
  } catch (const common::ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(FirestoreConfig, TheSectionHasDefaultsAndValidatesWhatGoesIntoTheRequest) {
  const auto c = common::parse_config(kConfig + "    firestore: {project: demo, collection: teams/t1/agents}\n");
  const auto& f = std::get<common::FirestoreSettings>(c.sources.at(0).settings);
  EXPECT_EQ(f.database, "(default)");
  EXPECT_EQ(f.collection, "teams/t1/agents");
  EXPECT_EQ(f.scope, common::FirestoreScope::kCollection);
  EXPECT_EQ(f.page_size, 1000);
  EXPECT_TRUE(f.updated_field.empty());
  EXPECT_NE(config_error("").find("sources[0].firestore: is required"), std::string::npos);
  EXPECT_NE(config_error("    firestore: {project: demo, collection: agents/a1}\n").find("names a document"),
            std::string::npos);
  EXPECT_NE(config_error("    firestore: {project: demo, collection: agents//x}\n").find("empty path segment"),
            std::string::npos);
  EXPECT_NE(config_error("    firestore: {project: de/mo, collection: agents}\n").find("sources[0].firestore.project"),
            std::string::npos);
  EXPECT_NE(config_error("    firestore: {project: demo, collection: agents, where: '[1]'}\n").find("JSON object"),
            std::string::npos);
  EXPECT_NE(config_error("    url: x.csv\n    firestore: {project: demo, collection: agents}\n").find("no url"),
            std::string::npos);
}

// ------------------------------------------------------------------ mapping typed values (R2)

// A source that serves prepared typed records (no server).
class TypedRecords : public SourceAdapter {
 public:
  explicit TypedRecords(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  std::string open() override { return ""; }
  const std::vector<std::string>& columns() const override { return columns_; }
  std::vector<std::string> column_warnings() const override { return {}; }
  bool is_duplicate_column(const std::string&) const override { return false; }
  bool next(SourceRecord&, std::optional<std::string>&) override { return false; }
  double progress() const override { return 0; }

 private:
  std::vector<std::string> columns_;
};

struct MapResult {
  bool ok = false;
  common::ChangeEvent event;
  RowError error;
};

MapResult map_agent(common::ListCoerce coerce, const std::optional<std::string>& lead_sources_json,
                    const std::string& email = "Agent@X.it ") {
  auto config = common::parse_config(kConfig + "    firestore: {project: demo, collection: agents}\n");
  for (auto& f : config.entities.at("agent").fields) f.coerce = coerce;
  const auto& source = config.sources.at(0);
  TypedRecords adapter({"__name__", "email", "leadSources"});
  Mapper mapper(source, config.entity("agent"), adapter);
  SourceRecord record;
  record.kind = CellKind::kTyped;
  record.position = 3;
  record.key = "uid-1";
  record.values.resize(3);
  record.values[0].set_string_value("uid-1");
  record.values[1].set_string_value(email);
  std::string error;
  if (lead_sources_json) {
    record.values[2] = *firestore::decode_value(json::parse(*lead_sources_json), "leadSources", error);
  }
  MapResult r;
  r.ok = mapper.map(record, r.event, r.error);
  return r;
}

std::vector<std::string> sources_of(const MapResult& r) {
  const auto& v = r.event.fields().at("lead_sources");
  EXPECT_EQ(v.kind_case(), Value::kStringList) << common::describe_value(v);
  return {v.string_list().values().begin(), v.string_list().values().end()};
}

TEST(FirestoreMapping, R2_AListArrivesAsAListAndTextIsNormalisedLikeACell) {
  const auto r = map_agent(common::ListCoerce::kReject,
                           R"({"arrayValue": {"values": [{"stringValue": "aimedici"}]}})");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_EQ(sources_of(r), std::vector<std::string>{"aimedici"});
  EXPECT_EQ(r.event.fields().at("email").string_value(), "agent@x.it");
  EXPECT_EQ(r.event.key(), "uid-1");
}

TEST(FirestoreMapping, R2_WrapScalarMakesAStringAListOfOneAndNullOrMissingTheEmptyList) {
  auto r = map_agent(common::ListCoerce::kWrapScalar, R"({"stringValue": "aimedici, web"})");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_EQ(sources_of(r), std::vector<std::string>{"aimedici, web"}) << "wrapped, not split";
  r = map_agent(common::ListCoerce::kWrapScalar, R"({"nullValue": null})");
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_TRUE(sources_of(r).empty());
  r = map_agent(common::ListCoerce::kWrapScalar, std::nullopt);
  ASSERT_TRUE(r.ok) << r.error.message;
  EXPECT_TRUE(sources_of(r).empty());
}

TEST(FirestoreMapping, R2_RejectMakesAStringNullOrMissingListARowErrorNamingDocumentAndField) {
  for (const auto& given : std::vector<std::optional<std::string>>{
           R"({"stringValue": "aimedici"})", R"({"nullValue": null})", std::nullopt, R"({"integerValue": "3"})"}) {
    const auto r = map_agent(common::ListCoerce::kReject, given);
    EXPECT_FALSE(r.ok) << given.value_or("(missing)");
    EXPECT_EQ(r.error.key, "uid-1");
    EXPECT_EQ(r.error.column, "leadSources");
    EXPECT_NE(r.error.message.find("lead_sources"), std::string::npos) << r.error.message;
    EXPECT_NE(r.error.message.find("coerce: reject"), std::string::npos) << r.error.message;
  }
}

TEST(FirestoreMapping, R2_AValueOfAnotherTypeIsARowErrorEvenUnderWrapScalar) {
  const auto r = map_agent(common::ListCoerce::kWrapScalar, R"({"mapValue": {"fields": {}}})");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error.column, "leadSources");
}

}  // namespace
}  // namespace leadsync::producers
