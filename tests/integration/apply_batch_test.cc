// R6, R13 — what one poll's batch does to the table, through the worker's real batch path
// (PostgresTarget::apply: validation, identities, the collapse, the merge statement, isolation)
// against the real PostgreSQL: partial events in one poll are merged per field, an event never
// loses to a newer one that failed, equal versions are decided by event id wherever the batch was
// cut, and per-field bookkeeping (sources, tombstones, enabling partial events later) holds.
#include <gtest/gtest.h>

#include <prometheus/registry.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <limits>

#include "common/mapping.h"
#include "common/pg.h"
#include "common/schema.h"
#include "ctl/verify.h"
#include "tests/integration/cluster.h"
#include "workers/metrics.h"
#include "workers/targets/entity_applier.h"
#include "workers/targets/postgres_target.h"

namespace leadsync::testing {
namespace {

using workers::ApplyCounts;

class ApplyBatch : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("batch"));
    config_.entities.at("lead").partial_events = true;
    conn_ = connect(config_);
    common::migrate(*conn_, config_);
    table_ = common::qualified(*conn_, config_.postgres.schema, "leads");
  }
  void TearDown() override {
    pqxx::work tx(*conn_);
    tx.exec("DROP SCHEMA IF EXISTS " + conn_->quote_name(config_.postgres.schema) + " CASCADE");
    tx.commit();
  }

  common::ChangeEvent base(const std::string& key, int64_t version, const std::string& id) {
    common::ChangeEvent e;
    e.set_source("crm");
    e.set_entity("lead");
    e.set_key(key);
    e.set_op(v1::OP_UPSERT);
    e.set_source_version(version);
    e.set_event_id(id);
    return e;
  }
  common::ChangeEvent full(const std::string& key, int64_t version, const std::string& status,
                           const std::string& phone, const std::string& id = "") {
    auto e = base(key, version, id.empty() ? "full-" + std::to_string(version) : id);
    for (const auto& f : config_.entity("lead").fields) (*e.mutable_fields())[f.name].set_null_value(true);
    (*e.mutable_fields())["email"].set_string_value(key + "@example.com");
    (*e.mutable_fields())["status"].set_string_value(status);
    (*e.mutable_fields())["phone"].set_string_value(phone);
    return e;
  }
  common::ChangeEvent partial(const std::string& key, int64_t version, const std::string& field,
                              const std::string& value) {
    auto e = base(key, version, "partial-" + std::to_string(version));
    e.set_partial(true);
    (*e.mutable_fields())[field].set_string_value(value);
    return e;
  }
  common::ChangeEvent tombstone(const std::string& key, int64_t version) {
    auto e = base(key, version, "delete-" + std::to_string(version));
    e.set_op(v1::OP_DELETE);
    return e;
  }

  // One poll through the worker's apply target; the records keep their failures for inspection.
  ApplyCounts apply(const std::vector<common::ChangeEvent>& events) {
    records_.clear();
    records_.resize(events.size());
    std::vector<workers::Record*> batch;
    for (std::size_t i = 0; i < events.size(); ++i) {
      records_[i].event = events[i];
      batch.push_back(&records_[i]);
    }
    prometheus::Registry registry;
    workers::WorkerMetrics metrics(registry);
    workers::PostgresTarget target(config_, metrics);
    EXPECT_TRUE(target.connect());
    ApplyCounts total;
    for (const auto& [run, c] : target.apply(batch)) total += c;
    return total;
  }
  pqxx::row row(const std::string& key) {
    pqxx::work tx(*conn_);
    return tx.exec_params1("SELECT status, phone, email, _version, _deleted, _source FROM " + table_ +
                               " WHERE lead_id = $1",
                           key);
  }
  std::string text(const pqxx::field& f) { return f.is_null() ? "NULL" : f.as<std::string>(); }

  common::Config config_;
  std::unique_ptr<pqxx::connection> conn_;
  std::string table_;
  std::vector<workers::Record> records_;
};

TEST_F(ApplyBatch, R6_TwoPartialEventsOfOneKeyInOnePollBothApply) {
  apply({full("L-1", 10, "new", "111")});
  const auto counts = apply({partial("L-1", 11, "status", "won"), partial("L-1", 12, "phone", "222")});
  const auto r = row("L-1");
  EXPECT_EQ(text(r[0]), "won");
  EXPECT_EQ(text(r[1]), "222");
  EXPECT_EQ(r[3].as<int64_t>(), 12);
  EXPECT_EQ(counts.updated, 2);
}

TEST_F(ApplyBatch, R6_ALateFullImageAndANewerPartialInOnePollKeepTheImagesOtherFields) {
  apply({full("L-1", 10, "new", "111")});
  apply({full("L-1", 20, "contacted", "222"), partial("L-1", 30, "status", "won")});
  const auto r = row("L-1");
  EXPECT_EQ(text(r[0]), "won");
  EXPECT_EQ(text(r[1]), "222");
  EXPECT_EQ(r[3].as<int64_t>(), 30);
}

TEST_F(ApplyBatch, R6_APartialEventForAnUnknownKeyMakesAnIncompleteRowThatTheFullImageCompletes) {
  const auto first = apply({partial("L-9", 30, "status", "won")});
  EXPECT_EQ(first.inserted, 0) << "a record without its required e-mail was counted as inserted";
  {
    pqxx::work tx(*conn_);
    const auto r = tx.exec1("SELECT email, status, _incomplete FROM " + table_ + " WHERE lead_id = 'L-9'");
    EXPECT_TRUE(r[0].is_null());
    EXPECT_EQ(text(r[1]), "won");
    EXPECT_TRUE(r[2].as<bool>()) << "a row whose required field is NULL is not marked incomplete";
  }
  // The full image was older than the partial: it completes the row, the partial's status stays.
  const auto second = apply({full("L-9", 20, "new", "333")});
  EXPECT_EQ(second.inserted, 1);
  pqxx::work tx(*conn_);
  const auto r = tx.exec1("SELECT email, status, phone, _incomplete, _version FROM " + table_ + " WHERE lead_id = 'L-9'");
  EXPECT_EQ(text(r[0]), "L-9@example.com");
  EXPECT_EQ(text(r[1]), "won");
  EXPECT_EQ(text(r[2]), "333");
  EXPECT_FALSE(r[3].as<bool>());
  EXPECT_EQ(r[4].as<int64_t>(), 30);
}

TEST_F(ApplyBatch, R7_VerifyDoesNotCountAnIncompleteRowAsARecord) {
  auto& source = config_.sources.at(0);
  source.url = "/tmp/" + config_.postgres.schema + ".csv";
  write_text_file(source.url,
                  "Lead ID,First name,Last name,Email,Phone,Company,Status,Assignee,Lead sources,Score,Created at,"
                  "Updated at,Notes\nL-1,Ann,Lee,l-1@example.com,111,Acme,new,,web,1,2026-01-01 00:00:00,"
                  "2026-01-01 00:00:00,\n");
  auto complete = full("L-1", 10, "new", "111");
  (*complete.mutable_fields())["email"].set_string_value("l-1@example.com");  // as the mapping normalises it
  (*complete.mutable_fields())["first_name"].set_string_value("Ann");
  (*complete.mutable_fields())["last_name"].set_string_value("Lee");
  (*complete.mutable_fields())["company"].set_string_value("Acme");
  (*complete.mutable_fields())["lead_sources"].mutable_string_list()->add_values("web");
  (*complete.mutable_fields())["score"].set_int_value(1);
  (*complete.mutable_fields())["created_at"].set_timestamp_micros(1'767'225'600'000'000);
  (*complete.mutable_fields())["updated_at"].set_timestamp_micros(1'767'225'600'000'000);
  auto pending = partial("L-2", 30, "status", "won");
  for (auto* e : {&complete, &pending}) e->set_source(source.name);
  apply({complete, pending});
  const auto report = ctl::verify_source(config_, source);
  std::remove(source.url.c_str());
  EXPECT_EQ(report.database_records, 1);
  EXPECT_EQ(report.extra_in_database, 0) << ctl::format_report(report);
  EXPECT_EQ(report.matching, 1) << ctl::format_report(report);
}

TEST_F(ApplyBatch, R13_WhenTheNewestEventOfAKeyFailsInTheDatabaseTheNextNewestApplies) {
  config_.entities.at("lead").partial_events = false;
  pqxx::nontransaction(*conn_).exec("ALTER TABLE " + table_ + " ADD CONSTRAINT no_poison CHECK (status <> 'poison')");
  const auto counts = apply({full("L-1", 5, "new", "111"), full("L-1", 6, "poison", "222")});
  ASSERT_TRUE(records_[1].failure.has_value()) << "the poisoned v6 did not fail";
  EXPECT_FALSE(records_[0].failure.has_value());
  const auto r = row("L-1");
  EXPECT_EQ(text(r[0]), "new") << "v5 was dropped by the collapse and lost with the failed v6";
  EXPECT_EQ(r[3].as<int64_t>(), 5);
  EXPECT_EQ(counts.inserted, 1);
  EXPECT_EQ(counts.stale, 0);
}

TEST_F(ApplyBatch, R13_EqualVersionsAreDecidedByEventIdWhereverTheBatchIsCut) {
  for (const bool partial_entity : {false, true}) {
    config_.entities.at("lead").partial_events = partial_entity;
    const auto a = full("L-a", 7, "from-a", "1", "event-a");
    const auto b = full("L-a", 7, "from-b", "2", "event-b");
    const std::vector<std::vector<std::vector<common::ChangeEvent>>> cuts = {
        {{a, b}}, {{b, a}}, {{a}, {b}}, {{b}, {a}}};
    for (const auto& polls : cuts) {
      pqxx::nontransaction(*conn_).exec("TRUNCATE " + table_);
      for (const auto& poll : polls) apply(poll);
      EXPECT_EQ(text(row("L-a")[0]), "from-b") << "partial_events " << partial_entity << ", polls " << polls.size()
                                               << ", first " << polls[0][0].event_id();
    }
  }
}

TEST_F(ApplyBatch, R13_AnOlderEventThatWinsOneFieldLeavesTheRecordsSourceAndOrigin) {
  apply({full("L-1", 100, "new", "111")});
  apply({partial("L-1", 300, "status", "won")});
  auto late = full("L-1", 200, "contacted", "222");
  late.set_source("sheet");
  late.set_origin("sheet");
  apply({late});
  pqxx::work tx(*conn_);
  const auto r = tx.exec1("SELECT phone, status, _source, _origin, _version FROM " + table_);
  EXPECT_EQ(text(r[0]), "222");
  EXPECT_EQ(text(r[1]), "won");
  EXPECT_EQ(text(r[2]), "crm") << "the older image took over the record's source";
  EXPECT_EQ(text(r[3]), "crm");
  EXPECT_EQ(r[4].as<int64_t>(), 300);
}

TEST_F(ApplyBatch, R13_ATombstoneRaisesEveryFieldsVersionSoThatOlderEventsNeverWriteAfterIt) {
  apply({full("L-1", 100, "new", "111")});
  apply({tombstone("L-1", 200)});
  apply({partial("L-1", 300, "status", "won")});  // revives the record
  apply({partial("L-1", 150, "phone", "999")});   // older than the delete: must not write
  const auto r = row("L-1");
  EXPECT_EQ(text(r[1]), "111") << "an event older than the tombstone wrote a field after it";
  EXPECT_EQ(text(r[0]), "won");
  EXPECT_FALSE(r[4].as<bool>());
}

TEST_F(ApplyBatch, R13_ATombstoneThatArrivesAfterANewerEventStillRaisesTheFieldsWrittenBeforeIt) {
  apply({full("L-1", 100, "new", "111")});
  apply({partial("L-1", 300, "status", "won")});
  apply({tombstone("L-1", 200)});                // older than the record: it stays live
  apply({partial("L-1", 150, "phone", "999")});  // older than the delete: must not write
  const auto r = row("L-1");
  EXPECT_EQ(text(r[1]), "111") << "whether an event older than a delete writes depended on arrival order";
  EXPECT_FALSE(r[4].as<bool>());
  EXPECT_EQ(r[3].as<int64_t>(), 300);
}

TEST_F(ApplyBatch, R13_EnablingPartialEventsOnAnExistingTableBackfillsEachFieldsVersion) {
  TearDown();
  config_.entities.at("lead").partial_events = false;
  common::migrate(*conn_, config_);
  apply({full("L-1", 200, "won", "222")});
  config_.entities.at("lead").partial_events = true;
  common::migrate(*conn_, config_);
  // A replayed older full image must lose every field, as it did before the switch.
  const auto counts = apply({full("L-1", 100, "new", "111")});
  const auto r = row("L-1");
  EXPECT_EQ(text(r[0]), "won");
  EXPECT_EQ(text(r[1]), "222");
  EXPECT_EQ(counts.stale, 1);
}

// R6 — the audit of an update is one row for the record, holding every field it changed as a row
// [field, old, new], in the fields' declared order; leadsync.field_changes shows it as one row per
// field (migration 14). The audit is shared by the cluster's tests: this test's key is its own.
TEST_F(ApplyBatch, R6_AnUpdateIsOneAuditRowHoldingItsChangedFieldsAndTheViewShowsOneRowPerField) {
  const auto key = unique_tag("L");
  apply({full(key, 10, "new", "111")});
  apply({full(key, 11, "won", "222")});  // status and phone change
  apply({partial(key, 12, "phone", "333")});
  apply({tombstone(key, 13)});
  pqxx::work tx(*conn_);
  const auto rows = tx.exec_params(
      "SELECT event_id, changes::text FROM leadsync.record_changes WHERE entity = 'lead' AND key = $1 ORDER BY id", key);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0].as<std::string>(), "full-11");
  EXPECT_EQ(rows[0][1].as<std::string>(), "{{phone,111,222},{status,new,won}}");
  EXPECT_EQ(rows[1][1].as<std::string>(), "{{phone,222,333}}");
  EXPECT_EQ(rows[2][1].as<std::string>(), "{{_deleted,false,true}}");
  std::vector<std::string> fields;
  for (const auto& r : tx.exec_params("SELECT event_id || ' ' || field || ' ' || coalesce(old_value, 'NULL') || ' -> ' || "
                                      "coalesce(new_value, 'NULL') FROM leadsync.field_changes WHERE entity = 'lead' "
                                      "AND key = $1 ORDER BY id, field",
                                      key)) {
    fields.push_back(r[0].as<std::string>());
  }
  EXPECT_EQ(fields, (std::vector<std::string>{"full-11 phone 111 -> 222", "full-11 status new -> won",
                                              "partial-12 phone 222 -> 333", "delete-13 _deleted false -> true"}));
  tx.exec_params("DELETE FROM leadsync.record_changes WHERE entity = 'lead' AND key = $1", key);
  tx.commit();
}

// Issue 12, typed staging: a batch whose values all have their fields' kinds is bound typed (bigint[],
// double precision[], boolean[], timestamptz[], date[] as array_send writes them); one with a value
// of another kind (a Firestore document's string in an int field) is bound as text, and the server
// casts. Both must store the same values: the same generated events — the extremes of every type,
// -0, NaN and the infinities, instants over years 1..9999, before 1970 and 2000, NULLs — go through
// each way into a table of their own, full-image and partial, and the tables are compared as text.
TEST_F(ApplyBatch, R13_TypedAndTextStagingStoreTheSameValueOfEveryKind) {
  using common::FieldType;
  constexpr int64_t kFirst = -62'135'596'800'000'000, kSpan = 315'537'897'600'000'000;  // years 1..9999
  uint64_t x = 0x9E3779B97F4A7C15ULL;  // xorshift: reproducible
  auto next = [&] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  const std::vector<int64_t> ints = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 0, -1};
  const std::vector<double> floats = {-0.0, std::numeric_limits<double>::quiet_NaN(),
                                      std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(),
                                      std::numeric_limits<double>::denorm_min(), std::numeric_limits<double>::max(),
                                      0.1};
  const std::vector<int64_t> instants = {kFirst, kFirst + kSpan - 1, -1, 0, 946'684'800'000'000 - 1,
                                         946'684'800'000'000, -86'400'000'000};
  for (const bool partial : {false, true}) {
    SCOPED_TRACE(partial ? "partial" : "full image");
    common::EntityConfig kinds;
    kinds.key = "k";
    kinds.partial_events = partial;
    kinds.fields = {{"i", FieldType::kInt},       {"f", FieldType::kFloat}, {"b", FieldType::kBool},
                    {"ts", FieldType::kTimestamp}, {"d", FieldType::kDate},  {"t", FieldType::kText}};
    auto config = config_;
    const std::string suffix = partial ? "_partial" : "_full";
    auto typed_entity = kinds, text_entity = kinds;
    typed_entity.name = typed_entity.table = "kinds_typed" + suffix;
    text_entity.name = text_entity.table = "kinds_text" + suffix;
    config.entities[typed_entity.name] = typed_entity;
    config.entities[text_entity.name] = text_entity;
    common::migrate(*conn_, config);

    std::vector<common::ChangeEvent> events(3000);
    for (std::size_t i = 0; i < events.size(); ++i) {
      auto& e = events[i];
      e.set_source("gen");
      e.set_key("k" + std::to_string(i));
      e.set_op(v1::OP_UPSERT);
      e.set_partial(partial);
      e.set_source_version(static_cast<int64_t>(next() >> 1) - (1LL << 62));
      e.set_event_id("e" + std::to_string(i));
      e.set_run_id("run");
      auto& f = *e.mutable_fields();
      const bool edge = i < 64;  // the first events take the listed extremes, the rest random values
      f["i"].set_int_value(edge ? ints[i % ints.size()] : static_cast<int64_t>(next()));
      double d = 0;
      do d = std::bit_cast<double>(next()); while (!std::isfinite(d));
      f["f"].set_double_value(edge ? floats[i % floats.size()] : d);
      f["b"].set_bool_value(next() & 1);
      const auto instant = [&](std::size_t at) {
        return edge ? instants[at % instants.size()] : kFirst + static_cast<int64_t>(next() % kSpan);
      };
      f["ts"].set_timestamp_micros(instant(i));
      f["d"].set_timestamp_micros(instant(i + 1));
      f["t"].set_string_value("v" + std::to_string(i));
      // Every tenth event leaves one field NULL, and in a partial entity every seventh omits one.
      const char* names[] = {"i", "f", "b", "ts", "d"};
      if (i % 10 == 3) f[names[i % 5]].set_null_value(true);
      if (partial && i % 7 == 2) f.erase(names[(i / 7) % 5]);
      if (i % 50 == 49) e.set_op(v1::OP_DELETE);
    }
    // The same events, and in each batch of 1,000 one more with a string in an int field: every
    // batch of these is bound as text, and the server casts the string.
    std::vector<common::ChangeEvent> text_events;
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (i % 999 == 0) {
        text_events.push_back(events[i]);
        text_events.back().set_key("odd" + std::to_string(i));
        text_events.back().set_op(v1::OP_UPSERT);
        (*text_events.back().mutable_fields())["i"].set_string_value("42");
      }
      text_events.push_back(events[i]);
    }

    auto run = [&](const common::EntityConfig& entity, std::vector<common::ChangeEvent>& batch, bool want_typed) {
      for (auto& e : batch) e.set_entity(entity.name);
      const workers::EntityApplier applier(config, config.entities.at(entity.name));
      std::vector<const common::ChangeEvent*> all;
      for (const auto& e : batch) all.push_back(&e);
      workers::ApplyCounts total;
      pqxx::work tx(*conn_);
      for (std::size_t from = 0; from < all.size(); from += 1000) {  // batches of 1,000, as a worker cuts them
        const std::vector<const common::ChangeEvent*> chunk(
            all.begin() + static_cast<std::ptrdiff_t>(from),
            all.begin() + static_cast<std::ptrdiff_t>(std::min(from + 1000, all.size())));
        EXPECT_EQ(applier.parameters(chunk).typed, want_typed) << entity.name << " from " << from;
        for (const auto& [r, c] : applier.apply(tx, chunk)) total += c;
      }
      tx.commit();
      return total;
    };
    const auto typed_counts = run(typed_entity, events, true);
    const auto text_counts = run(text_entity, text_events, false);
    EXPECT_EQ(typed_counts.inserted + typed_counts.deleted, 3000u);
    EXPECT_EQ(text_counts.inserted + text_counts.deleted, 3004u);

    pqxx::work tx(*conn_);
    tx.exec("SET LOCAL TIME ZONE 'UTC'");
    const auto schema = conn_->quote_name(config.postgres.schema);
    const std::string columns = "k, i::text, f::text, b::text, ts::text, d::text, t, _version, _deleted, _event_id";
    const auto from = [&](const std::string& table) { return "SELECT " + columns + " FROM " + schema + "." + table; };
    const auto typed_table = "kinds_typed" + suffix, text_table = "kinds_text" + suffix;
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM (" + from(typed_table) + " EXCEPT " + from(text_table) + ") d")[0].as<int>(),
              0);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM (" + from(text_table) + " WHERE k NOT LIKE 'odd%' EXCEPT " +
                       from(typed_table) + ") d")[0].as<int>(),
              0);
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema + "." + typed_table)[0].as<int>(), 3000);
    // And the values are the events' own, not only alike: the extremes, spelled by the server.
    const auto value = [&](const std::string& key, const std::string& column) {
      const auto f = tx.exec1("SELECT " + column + "::text FROM " + schema + "." + typed_table + " WHERE k = " +
                              tx.quote(key))[0];
      return f.is_null() ? std::string("NULL") : f.as<std::string>();
    };
    EXPECT_EQ(value("k0", "i"), "-9223372036854775808");
    EXPECT_EQ(value("k1", "i"), "9223372036854775807");
    EXPECT_EQ(value("k0", "f"), "-0");
    EXPECT_EQ(value("k1", "f"), "NaN");
    EXPECT_EQ(value("k2", "f"), "Infinity");
    EXPECT_EQ(value("k0", "ts"), "0001-01-01 00:00:00+00");
    EXPECT_EQ(value("k1", "ts"), "9999-12-31 23:59:59.999999+00");
    EXPECT_EQ(value("k2", "ts"), "1969-12-31 23:59:59.999999+00");
    EXPECT_EQ(value("k1", "d"), "1969-12-31");  // instants[2] = -1 µs: the UTC date before the epoch
    EXPECT_EQ(value("k3", "d"), "1999-12-31");  // instants[4]: 1 µs before 2000
    EXPECT_EQ(value("k4", "d"), "2000-01-01");
    EXPECT_EQ(value("k5", "d"), "1969-12-31");  // instants[6] = -1 day
    EXPECT_EQ(tx.exec1("SELECT count(*) FROM " + schema + "." + text_table + " WHERE k LIKE 'odd%' AND i = 42")[0]
                  .as<int>(),
              4);
  }
}

// The typed statement and the text one are prepared per entity on the worker's connection, under names
// that no two entities can share: an entity named `text_n` beside one named `n` must not find the
// other's statement under its own name (both ways of binding, one connection, one transaction).
TEST_F(ApplyBatch, R13_TwoEntitiesWhoseNamesDifferByAPrefixKeepTheirOwnStatements) {
  auto config = config_;
  common::EntityConfig n;
  n.key = "k";
  n.fields = {{"i", common::FieldType::kInt}};
  auto text_n = n;
  n.name = n.table = "n";
  text_n.name = text_n.table = "text_n";
  config.entities["n"] = n;
  config.entities["text_n"] = text_n;
  common::migrate(*conn_, config);
  auto event = [](const std::string& entity, const std::string& key, auto set) {
    common::ChangeEvent e;
    e.set_entity(entity);
    e.set_source("gen");
    e.set_key(key);
    e.set_op(v1::OP_UPSERT);
    e.set_source_version(1);
    e.set_event_id("e-" + key);
    set((*e.mutable_fields())["i"]);
    return e;
  };
  const auto as_text = event("n", "a", [](common::Value& v) { v.set_string_value("7"); });  // bound as text
  const auto typed = event("text_n", "b", [](common::Value& v) { v.set_int_value(8); });     // bound typed
  const workers::EntityApplier n_applier(config, config.entities.at("n"));
  const workers::EntityApplier text_n_applier(config, config.entities.at("text_n"));
  ASSERT_FALSE(n_applier.parameters({&as_text}).typed);
  ASSERT_TRUE(text_n_applier.parameters({&typed}).typed);
  pqxx::work tx(*conn_);
  EXPECT_EQ(n_applier.apply(tx, {&as_text}).at("").inserted, 1u);
  EXPECT_EQ(text_n_applier.apply(tx, {&typed}).at("").inserted, 1u);
  const auto schema = conn_->quote_name(config.postgres.schema);
  EXPECT_EQ(tx.exec1("SELECT k || '=' || i FROM " + schema + ".n")[0].as<std::string>(), "a=7");
  EXPECT_EQ(tx.exec1("SELECT k || '=' || i FROM " + schema + ".text_n")[0].as<std::string>(), "b=8");
}

}  // namespace
}  // namespace leadsync::testing
