// The merge statement (design.md §4) as text, without a database: a change to the SQL shows up here
// as a diff to review. The integration and property tests prove what the statement does.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

#include "common/pg.h"
#include "workers/targets/entity_applier.h"
#include "workers/targets/postgres_sql.h"

namespace leadsync::workers {
namespace {

using common::FieldType;

common::EntityConfig contact(bool partial, bool audit) {
  common::EntityConfig e;
  e.name = "contact";
  e.table = "contacts";
  e.key = "id";
  e.audit = audit;
  e.partial_events = partial;
  e.fields = {{"email", FieldType::kText, true}, {"score", FieldType::kInt, false}};
  return e;
}

// The builder writes one line; the goldens are wrapped between words for review (a line break
// stands for one space, the first one for nothing).
std::string unwrapped(const char* golden) {
  std::string out;
  for (const char* p = golden; *p; ++p) {
    if (*p != '\n') {
      out += *p;
    } else if (p != golden) {
      out += ' ';
    }
  }
  return out;
}

TEST(MergeSql, GoldenStatementForAFullImageEntityWithAudit) {
  const auto st = merge_statement("crm", contact(false, true));
  EXPECT_EQ(st.sql, unwrapped(R"sql(
WITH stage AS MATERIALIZED (SELECT s.c1 AS "id", s.c2::text AS "email", s.c3::bigint AS "score", s.c4::bigint
AS _version, s.c5::boolean AS _deleted, s.c7 AS _source, s.c8 AS _origin, s.c6 AS _event_id, s.c9 AS _run_id
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::boolean[], $6::text[], $7::text[],
$8::text[], $9::text[]) AS s(c1, c2, c3, c4, c5, c6, c7, c8, c9)), up AS (INSERT INTO "crm"."contacts" AS t
("id", "email", "score", _version, _event_id, _deleted, _source, _origin, _synced_at, _created_version,
_created_event, _created_run, _created_at) SELECT "id", "email", "score", _version, _event_id, _deleted,
_source, _origin, now(), _version, _event_id, _run_id, now() FROM stage ON CONFLICT ("id") DO UPDATE SET
"email" = CASE WHEN EXCLUDED._deleted THEN t."email" ELSE EXCLUDED."email" END, "score" = CASE WHEN
EXCLUDED._deleted THEN t."score" ELSE EXCLUDED."score" END, _version = EXCLUDED._version, _event_id =
EXCLUDED._event_id, _deleted = EXCLUDED._deleted, _source = EXCLUDED._source, _origin = EXCLUDED._origin,
_synced_at = EXCLUDED._synced_at WHERE (t._version, coalesce(t._event_id, '')) < (EXCLUDED._version,
EXCLUDED._event_id) RETURNING t."id", t."email", t."score", t._deleted, t._created_run, t._event_id,
t._created_event), old AS MATERIALIZED (SELECT t."id", t."email", t."score", t._deleted FROM "crm"."contacts"
t WHERE t."id" IN (SELECT "id" FROM up WHERE up._created_event IS DISTINCT FROM up._event_id)), cls AS (SELECT
s._run_id, u."id" IS NOT NULL AS touched, u._deleted, o."id" IS NULL AS is_insert, (o."id" IS NOT NULL AND
ROW(o."email", o."score", o._deleted) IS DISTINCT FROM ROW(u."email", u."score", u._deleted)) AS is_changed,
(o."id" IS NOT NULL AND NOT false) AS was_record, NOT false AS is_record, s."id", s._source, s._event_id, CASE
WHEN (o."id" IS NOT NULL AND ROW(o."email", o."score", o._deleted) IS DISTINCT FROM ROW(u."email", u."score",
u._deleted)) THEN array_cat(array_cat(CASE WHEN o."email" IS DISTINCT FROM u."email" THEN ARRAY[['email',
o."email"::text, u."email"::text]] END, CASE WHEN o."score" IS DISTINCT FROM u."score" THEN ARRAY[['score',
o."score"::text, u."score"::text]] END), CASE WHEN o._deleted IS DISTINCT FROM u._deleted THEN
ARRAY[['_deleted', o._deleted::text, u._deleted::text]] END) END AS changes FROM old o JOIN up u ON u."id" =
o."id" JOIN stage s ON s."id" = u."id"), audit AS (INSERT INTO leadsync.record_changes (entity, key, changes,
source, event_id, run_id) SELECT $10, c."id", c.changes, c._source, c._event_id, c._run_id FROM cls c WHERE
c.changes IS NOT NULL) SELECT r, sum(i)::bigint, sum(u)::bigint, sum(d)::bigint, sum(n)::bigint,
sum(s)::bigint FROM (SELECT up._created_run, count(*) FILTER (WHERE NOT up._deleted), 0, count(*) FILTER
(WHERE up._deleted), 0, -count(*) FROM up WHERE up._created_event IS NOT DISTINCT FROM up._event_id GROUP BY
up._created_run UNION ALL SELECT c._run_id, count(*) FILTER (WHERE NOT c._deleted AND c.is_record AND NOT
c.was_record), count(*) FILTER (WHERE NOT c._deleted AND c.is_record AND c.was_record AND c.is_changed),
count(*) FILTER (WHERE c._deleted AND (c.is_insert OR c.is_changed)), count(*) FILTER (WHERE NOT (NOT
c._deleted AND c.is_record AND NOT c.was_record) AND NOT (NOT c._deleted AND c.is_record AND c.was_record AND
c.is_changed) AND NOT (c._deleted AND (c.is_insert OR c.is_changed))), -count(*) FROM cls c GROUP BY c._run_id
UNION ALL SELECT s._run_id, 0, 0, 0, 0, count(*) FROM stage s GROUP BY s._run_id) AS per_run (r, i, u, d, n,
s) GROUP BY r)sql"));
  EXPECT_TRUE(st.binds_entity_name);
}

TEST(MergeSql, GoldenStatementForAPartialEventEntity) {
  const auto st = merge_statement("crm", contact(true, false));
  EXPECT_EQ(st.sql, unwrapped(R"sql(
WITH stage AS MATERIALIZED (SELECT s.c1 AS "id", s.c2::text AS "email", s.c3::bigint AS "score", s.c4::bigint
AS _version, s.c5::boolean AS _deleted, s.c7 AS _source, s.c8 AS _origin, s.c6 AS _event_id, s.c9 AS _run_id,
coalesce((SELECT jsonb_object_agg(a.name, jsonb_build_array(s.c4::bigint, s.c6)) FROM unnest(ARRAY['email',
'score']) WITH ORDINALITY AS a(name, i) WHERE substr(s.c10, a.i::int, 1) = '1' OR s.c5::boolean), '{}') AS
_field_versions, (s.c2 IS NULL) AS _incomplete FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[],
$5::boolean[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) AS s(c1, c2, c3, c4, c5, c6, c7,
c8, c9, c10)), up AS (INSERT INTO "crm"."contacts" AS t ("id", "email", "score", _version, _event_id,
_deleted, _source, _origin, _synced_at, _field_versions, _incomplete, _created_version, _created_event,
_created_run, _created_at) SELECT "id", "email", "score", _version, _event_id, _deleted, _source, _origin,
now(), _field_versions, _incomplete, _version, _event_id, _run_id, now() FROM stage ON CONFLICT ("id") DO
UPDATE SET "email" = CASE WHEN (NOT EXCLUDED._deleted AND EXCLUDED._field_versions->'email' >
coalesce(t._field_versions->'email', '[0, ""]') AND (NOT t._deleted OR EXCLUDED._field_versions->'email' >
jsonb_build_array(t._version, coalesce(t._event_id, '')))) THEN EXCLUDED."email" ELSE t."email" END, "score" =
CASE WHEN (NOT EXCLUDED._deleted AND EXCLUDED._field_versions->'score' > coalesce(t._field_versions->'score',
'[0, ""]') AND (NOT t._deleted OR EXCLUDED._field_versions->'score' > jsonb_build_array(t._version,
coalesce(t._event_id, '')))) THEN EXCLUDED."score" ELSE t."score" END, _field_versions = t._field_versions ||
jsonb_strip_nulls(jsonb_build_object('email', GREATEST(t._field_versions->'email', CASE WHEN (NOT
EXCLUDED._deleted AND EXCLUDED._field_versions->'email' > coalesce(t._field_versions->'email', '[0, ""]') AND
(NOT t._deleted OR EXCLUDED._field_versions->'email' > jsonb_build_array(t._version, coalesce(t._event_id,
'')))) THEN EXCLUDED._field_versions->'email' END, CASE WHEN EXCLUDED._deleted THEN
jsonb_build_array(EXCLUDED._version, EXCLUDED._event_id) END), 'score', GREATEST(t._field_versions->'score',
CASE WHEN (NOT EXCLUDED._deleted AND EXCLUDED._field_versions->'score' > coalesce(t._field_versions->'score',
'[0, ""]') AND (NOT t._deleted OR EXCLUDED._field_versions->'score' > jsonb_build_array(t._version,
coalesce(t._event_id, '')))) THEN EXCLUDED._field_versions->'score' END, CASE WHEN EXCLUDED._deleted THEN
jsonb_build_array(EXCLUDED._version, EXCLUDED._event_id) END))), _deleted = CASE WHEN (t._version,
coalesce(t._event_id, '')) < (EXCLUDED._version, EXCLUDED._event_id) THEN EXCLUDED._deleted ELSE t._deleted
END, _version = CASE WHEN (t._version, coalesce(t._event_id, '')) < (EXCLUDED._version, EXCLUDED._event_id)
THEN EXCLUDED._version ELSE t._version END, _event_id = CASE WHEN (t._version, coalesce(t._event_id, '')) <
(EXCLUDED._version, EXCLUDED._event_id) THEN EXCLUDED._event_id ELSE t._event_id END, _source = CASE WHEN
(t._version, coalesce(t._event_id, '')) < (EXCLUDED._version, EXCLUDED._event_id) THEN EXCLUDED._source ELSE
t._source END, _origin = CASE WHEN (t._version, coalesce(t._event_id, '')) < (EXCLUDED._version,
EXCLUDED._event_id) THEN EXCLUDED._origin ELSE t._origin END, _incomplete = (CASE WHEN (NOT EXCLUDED._deleted
AND EXCLUDED._field_versions->'email' > coalesce(t._field_versions->'email', '[0, ""]') AND (NOT t._deleted OR
EXCLUDED._field_versions->'email' > jsonb_build_array(t._version, coalesce(t._event_id, '')))) THEN
EXCLUDED."email" ELSE t."email" END) IS NULL, _synced_at = EXCLUDED._synced_at WHERE (t._version,
coalesce(t._event_id, '')) < (EXCLUDED._version, EXCLUDED._event_id) OR (NOT EXCLUDED._deleted AND
EXCLUDED._field_versions->'email' > coalesce(t._field_versions->'email', '[0, ""]') AND (NOT t._deleted OR
EXCLUDED._field_versions->'email' > jsonb_build_array(t._version, coalesce(t._event_id, '')))) OR (NOT
EXCLUDED._deleted AND EXCLUDED._field_versions->'score' > coalesce(t._field_versions->'score', '[0, ""]') AND
(NOT t._deleted OR EXCLUDED._field_versions->'score' > jsonb_build_array(t._version, coalesce(t._event_id,
'')))) OR (EXCLUDED._deleted AND (coalesce(t._field_versions->'email', '[0, ""]') <
jsonb_build_array(EXCLUDED._version, EXCLUDED._event_id) OR coalesce(t._field_versions->'score', '[0, ""]') <
jsonb_build_array(EXCLUDED._version, EXCLUDED._event_id))) RETURNING t."id", t."email", t."score", t._deleted,
t._incomplete, t._event_id, t._created_event), old AS MATERIALIZED (SELECT t."id", t."email", t."score",
t._deleted, t._incomplete FROM "crm"."contacts" t WHERE t."id" IN (SELECT "id" FROM up)), cls AS (SELECT
s._run_id, u."id" IS NOT NULL AS touched, u._deleted, o."id" IS NULL AS is_insert, (o."id" IS NOT NULL AND
ROW(o."email", o."score", o._deleted) IS DISTINCT FROM ROW(u."email", u."score", u._deleted)) AS is_changed,
(o."id" IS NOT NULL AND NOT o._incomplete) AS was_record, NOT u._incomplete AS is_record FROM stage s LEFT
JOIN up u ON u."id" = s."id" LEFT JOIN old o ON o."id" = u."id") SELECT c._run_id, count(*) FILTER (WHERE
c.touched AND NOT c._deleted AND c.is_record AND NOT c.was_record), count(*) FILTER (WHERE c.touched AND NOT
c._deleted AND c.is_record AND c.was_record AND c.is_changed), count(*) FILTER (WHERE c.touched AND c._deleted
AND (c.is_insert OR c.is_changed)), count(*) FILTER (WHERE c.touched AND NOT (NOT c._deleted AND c.is_record
AND NOT c.was_record) AND NOT (NOT c._deleted AND c.is_record AND c.was_record AND c.is_changed) AND NOT
(c._deleted AND (c.is_insert OR c.is_changed))), count(*) FILTER (WHERE NOT c.touched) FROM cls c GROUP BY
c._run_id)sql"));
  EXPECT_FALSE(st.binds_entity_name);
}

TEST(MergeSql, IdentifiersAreQuotedEvenWhenTheyContainQuotes) {
  auto e = contact(false, false);
  e.table = "odd\"table";
  e.fields[0].name = "e\"mail";
  const auto sql = merge_statement("my schema", e).sql;
  EXPECT_NE(sql.find(R"("my schema"."odd""table")"), std::string::npos) << sql;
  EXPECT_NE(sql.find(R"("e""mail")"), std::string::npos) << sql;
}

TEST(MergeSql, EveryStagedColumnIsBoundOnceInOrder) {
  common::Config config;
  config.postgres.schema = "crm";
  const auto entity = contact(true, true);
  EntityApplier applier(config, entity);
  common::ChangeEvent e;
  e.set_entity("contact");
  e.set_key("k\"1");
  e.set_source("sheet");
  e.set_op(v1::OP_UPSERT);
  e.set_partial(true);
  e.set_source_version(7);
  e.set_event_id("ev");
  e.set_run_id("run");
  (*e.mutable_fields())["score"].set_int_value(42);
  ASSERT_TRUE(applier.parameters({&e}).typed);
  const auto params = applier.parameters({&e}).values;
  const auto& st = applier.statement();
  ASSERT_EQ(params.size(), st.columns.size() + 1);
  ASSERT_EQ(st.column_types.size(), st.columns.size());
  const std::map<uint32_t, std::string> array_types = {{common::BinaryArray::kText, "text[]"},
                                                       {common::BinaryArray::kInt8, "bigint[]"},
                                                       {common::BinaryArray::kBool, "boolean[]"}};
  for (std::size_t i = 1; i <= st.columns.size(); ++i) {
    const auto type = array_types.at(st.column_types[i - 1]);
    EXPECT_NE(st.sql.find("$" + std::to_string(i) + "::" + type), std::string::npos) << "$" << i << " " << type;
    EXPECT_NE(st.text_sql.find("$" + std::to_string(i) + "::text[]"), std::string::npos) << "$" << i;
  }
  // The score, the version and the tombstone flag are bound typed, everything else as text; the two
  // variants differ in nothing else.
  std::vector<uint32_t> typed;
  for (std::size_t i = 0; i < st.columns.size(); ++i) {
    if (st.column_types[i] != common::BinaryArray::kText) typed.push_back(static_cast<uint32_t>(st.columns[i]));
  }
  EXPECT_EQ(typed, (std::vector<uint32_t>{static_cast<uint32_t>(StagedColumn::kField),
                                          static_cast<uint32_t>(StagedColumn::kVersion),
                                          static_cast<uint32_t>(StagedColumn::kDeleted)}));
  auto text = st.sql;
  for (const auto* t : {"bigint[]", "boolean[]"}) {
    for (auto at = text.find(t); at != std::string::npos; at = text.find(t)) {
      text.replace(at, std::string(t).size(), "text[]");
    }
  }
  EXPECT_EQ(text, st.text_sql);
  EXPECT_EQ(params.back(), "contact");
  common::BinaryArray key;
  key.add(std::string_view("k\"1"));
  EXPECT_EQ(params.front(), key.bytes());
}


// Bound as text (a batch with a value of another kind than its field's type), each value kind is
// staged as sql_text() spells it, as an element of a binary text[]: the staging writes the common
// kinds straight from the event's bytes, and must agree with sql_text().
TEST(MergeSql, EveryValueKindIsStagedAsSqlTextSpellsIt) {
  common::Config config;
  config.postgres.schema = "crm";
  common::EntityConfig entity;
  entity.name = "lead";
  entity.table = "leads";
  entity.key = "id";
  entity.fields = {{"t", FieldType::kText, false},      {"i", FieldType::kInt, false},
                   {"f", FieldType::kFloat, false},     {"b", FieldType::kBool, false},
                   {"ts", FieldType::kTimestamp, false}, {"d", FieldType::kDate, false},
                   {"l", FieldType::kTextList, false},  {"j", FieldType::kJson, false},
                   {"n", FieldType::kText, false}};
  EntityApplier applier(config, entity);
  common::ChangeEvent e;
  e.set_entity("lead");
  e.set_key("k");
  e.set_op(v1::OP_UPSERT);
  e.set_source_version(-9000000000);
  auto& f = *e.mutable_fields();
  f["t"].set_string_value(R"(a "quoted" \ back\slash, comma {brace} – é)");
  f["i"].set_int_value(-1234567890123);
  f["f"].set_double_value(0.1);
  f["b"].set_bool_value(true);
  f["ts"].set_timestamp_micros(1767323045123456);
  f["d"].set_timestamp_micros(1767323045123456);
  f["l"].mutable_string_list()->add_values("x,y");
  f["l"].mutable_string_list()->add_values("q\"");
  f["j"].set_json_value(R"({"a":[1,"\\"]})");
  f["n"].set_null_value(true);
  const auto params = applier.text_parameters({&e});
  const auto& st = applier.statement();
  std::size_t checked = 0;
  for (std::size_t c = 0; c < st.columns.size(); ++c) {
    if (st.columns[c] != StagedColumn::kField) continue;
    const auto& field = entity.fields[static_cast<std::size_t>(st.column_field[c])];
    common::BinaryArray expected;
    expected.add(sql_text(field, f.at(field.name)));
    EXPECT_EQ(params[c], expected.bytes()) << field.name;
    ++checked;
  }
  EXPECT_EQ(checked, entity.fields.size());
  const auto version = std::find(st.columns.begin(), st.columns.end(), StagedColumn::kVersion) - st.columns.begin();
  common::BinaryArray want_version;
  want_version.add(std::string_view("-9000000000"));
  EXPECT_EQ(params[static_cast<std::size_t>(version)], want_version.bytes());
}

// The literal escapes exactly the quote and the backslash, wherever they are.
TEST(MergeSql, ATextArrayLiteralEscapesQuotesAndBackslashesOnly) {
  common::TextArrayLiteral a;
  a.add(std::string_view(R"("\x"y\)"));
  a.add(std::string_view(""));
  a.add_null();
  a.add(std::string_view("plain, {text}"));
  EXPECT_EQ(a.str(), R"({"\"\\x\"y\\","",NULL,"plain, {text}"})");
}

// The binary text[] is array_send's format: 1 dimension (none when empty), the null flag, the element
// type (text, 25), the length and lower bound 1, then per element its length (-1: NULL) and bytes,
// every integer 4 bytes big-endian. (The apply tests prove that the server reads it back.)
TEST(MergeSql, ABinaryTextArrayIsArraySendsFormat) {
  using namespace std::string_literals;
  common::BinaryArray a;
  a.add(std::string_view("\"{x}\\"));
  a.add(std::string_view(""));
  a.add_null();
  EXPECT_EQ(a.size(), 3u);
  EXPECT_EQ(a.bytes(), "\0\0\0\1"s "\0\0\0\1"s "\0\0\0\x19"s "\0\0\0\3"s "\0\0\0\1"s
                       "\0\0\0\5\"{x}\\"s "\0\0\0\0"s "\xff\xff\xff\xff"s);
  common::BinaryArray no_nulls;
  no_nulls.add(std::string_view("ab"));
  EXPECT_EQ(no_nulls.bytes(), "\0\0\0\1\0\0\0\0\0\0\0\x19\0\0\0\1\0\0\0\1\0\0\0\2ab"s);
  EXPECT_EQ(common::BinaryArray().bytes(), "\0\0\0\0\0\0\0\0\0\0\0\x19"s);
}

// Timestamps and dates are staged by a formatter of their own (no snprintf, issue 12): it must
// spell every instant exactly as sql_text() does — leap days, the turn of centuries, before 1970,
// the first and last representable years — and leave other years to sql_text().
TEST(MergeSql, TimestampsAndDatesAreStagedAsSqlTextSpellsThemAcrossTheWholeRange) {
  common::Config config;
  config.postgres.schema = "crm";
  common::EntityConfig entity;
  entity.name = "lead";
  entity.table = "leads";
  entity.key = "id";
  entity.fields = {{"ts", FieldType::kTimestamp, false}, {"d", FieldType::kDate, false}};
  EntityApplier applier(config, entity);
  constexpr int64_t kDay = 86'400'000'000;
  std::vector<int64_t> instants = {0, -1, 1, kDay - 1, -kDay, 951'782'400'000'000 /* 2000-02-29 */,
                                   -2'203'891'200'000'001 /* 1900-02-28 23:59:59.999999 */,
                                   -62'135'596'800'000'000 /* 0001-01-01 */, 253'402'300'799'999'999 /* 9999-12-31 */,
                                   -62'135'596'800'000'001 /* year 0: sql_text's way */,
                                   253'402'300'800'000'000 /* year 10000 */};
  uint64_t x = 88172645463325252ULL;  // xorshift: many instants over the whole range, reproducibly
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    instants.push_back(-62'135'596'800'000'000 + static_cast<int64_t>(x % 315'537'897'600'000'000ULL));
  }
  std::vector<common::ChangeEvent> events(instants.size());
  std::vector<const common::ChangeEvent*> pointers;
  common::BinaryArray want_ts, want_d;
  for (std::size_t i = 0; i < instants.size(); ++i) {
    auto& e = events[i];
    e.set_entity("lead");
    e.set_key("k" + std::to_string(i));
    e.set_op(v1::OP_UPSERT);
    (*e.mutable_fields())["ts"].set_timestamp_micros(instants[i]);
    (*e.mutable_fields())["d"].set_timestamp_micros(instants[i]);
    want_ts.add(sql_text(entity.fields[0], e.fields().at("ts")));
    want_d.add(sql_text(entity.fields[1], e.fields().at("d")));
    pointers.push_back(&e);
  }
  const auto params = applier.text_parameters(pointers);
  const auto& st = applier.statement();
  for (std::size_t c = 0; c < st.columns.size(); ++c) {
    if (st.columns[c] != StagedColumn::kField) continue;
    const auto& want = st.column_field[c] == 0 ? want_ts : want_d;
    EXPECT_EQ(params[c], want.bytes()) << "column " << c;
  }
}

// Typed elements are written as int8send, float8send, boolsend, timestamptz_send and date_send
// write them: big-endian, a timestamp in microseconds and a date in days since 2000-01-01, each
// after its length; the header names the element type. (ApplyBatch's typed-against-text test proves
// that the server reads them back as the values the text form spells.)
TEST(MergeSql, ATypedBinaryArrayIsArraySendsFormatForItsType) {
  using namespace std::string_literals;
  common::BinaryArray i(common::BinaryArray::kInt8);
  i.add_int8(-2);
  i.add_null();
  EXPECT_EQ(i.bytes(), "\0\0\0\1"s "\0\0\0\1"s "\0\0\0\x14"s "\0\0\0\2"s "\0\0\0\1"s
                       "\0\0\0\x08\xff\xff\xff\xff\xff\xff\xff\xfe"s "\xff\xff\xff\xff"s);
  common::BinaryArray f(common::BinaryArray::kFloat8);
  f.add_float8(-0.0);
  f.add_float8(1.5);
  EXPECT_EQ(f.bytes(), "\0\0\0\1\0\0\0\0\0\0\x02\xbd\0\0\0\2\0\0\0\1"s "\0\0\0\x08\x80\0\0\0\0\0\0\0"s
                       "\0\0\0\x08\x3f\xf8\0\0\0\0\0\0"s);
  common::BinaryArray b(common::BinaryArray::kBool);
  b.add_bool(true);
  b.add_bool(false);
  EXPECT_EQ(b.bytes(), "\0\0\0\1\0\0\0\0\0\0\0\x10\0\0\0\2\0\0\0\1"s "\0\0\0\1\1"s "\0\0\0\1\0"s);
  common::BinaryArray d(common::BinaryArray::kDate);
  d.add_date(-1);
  EXPECT_EQ(d.bytes(), "\0\0\0\1\0\0\0\0\0\0\x04\x3a\0\0\0\1\0\0\0\1"s "\0\0\0\4\xff\xff\xff\xff"s);
  common::BinaryArray ts(common::BinaryArray::kTimestamptz);
  ts.add_timestamptz(1);
  EXPECT_EQ(ts.bytes(), "\0\0\0\1\0\0\0\0\0\0\x04\xa0\0\0\0\1\0\0\0\1"s "\0\0\0\x08\0\0\0\0\0\0\0\1"s);
}

// A batch is bound typed only if every value has its field's kind (NULL and an omitted field fit
// any), a timestamp within the years 1..9999 on which both forms agree; a tombstone's values are not
// staged and never keep a batch from it. Otherwise it is bound as text, values as sql_text spells them.
TEST(MergeSql, ABatchIsBoundTypedOnlyIfEveryValueHasItsFieldsKind) {
  common::Config config;
  common::EntityConfig entity;
  entity.name = "lead";
  entity.table = "leads";
  entity.key = "id";
  entity.fields = {{"i", FieldType::kInt, false},       {"f", FieldType::kFloat, false},
                   {"b", FieldType::kBool, false},      {"ts", FieldType::kTimestamp, false},
                   {"d", FieldType::kDate, false},      {"t", FieldType::kText, false}};
  EntityApplier applier(config, entity);
  auto event = [](const std::string& field, auto set) {
    common::ChangeEvent e;
    e.set_key("k");
    e.set_op(v1::OP_UPSERT);
    set((*e.mutable_fields())[field]);
    return e;
  };
  const auto fits = [&](const common::ChangeEvent& e) { return applier.parameters({&e}).typed; };
  EXPECT_TRUE(fits(event("i", [](common::Value& v) { v.set_int_value(1); })));
  EXPECT_TRUE(fits(event("i", [](common::Value& v) { v.set_null_value(true); })));
  EXPECT_TRUE(fits(event("t", [](common::Value& v) { v.set_int_value(1); })));  // text takes any kind's text
  EXPECT_TRUE(fits(event("f", [](common::Value& v) { v.set_double_value(1); })));
  EXPECT_TRUE(fits(event("ts", [](common::Value& v) { v.set_timestamp_micros(-62'135'596'800'000'000); })));
  EXPECT_FALSE(fits(event("i", [](common::Value& v) { v.set_string_value("42"); })));
  EXPECT_FALSE(fits(event("i", [](common::Value& v) { v.set_double_value(1); })));
  EXPECT_FALSE(fits(event("f", [](common::Value& v) { v.set_int_value(1); })));
  EXPECT_FALSE(fits(event("b", [](common::Value& v) { v.set_string_value("yes"); })));
  EXPECT_FALSE(fits(event("ts", [](common::Value& v) { v.set_string_value("2026-01-01"); })));
  EXPECT_FALSE(fits(event("ts", [](common::Value& v) { v.set_timestamp_micros(-62'135'596'800'000'001); })));
  EXPECT_FALSE(fits(event("d", [](common::Value& v) { v.set_timestamp_micros(253'402'300'800'000'000); })));
  auto tombstone = event("i", [](common::Value& v) { v.set_string_value("42"); });
  tombstone.set_op(v1::OP_DELETE);
  EXPECT_TRUE(fits(tombstone));
  // One odd value sends the whole batch the text way.
  const auto good = event("i", [](common::Value& v) { v.set_int_value(1); });
  const auto odd = event("f", [](common::Value& v) { v.set_string_value("x"); });
  EXPECT_FALSE(applier.parameters({&good, &odd}).typed);
}

}  // namespace
}  // namespace leadsync::workers
