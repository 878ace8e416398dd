// R7 — verify, repair and rollback against the real broker and database: a lead sheet is synced by
// the producer and a worker, then PostgreSQL is corrupted behind leadsync's back (chosen fields of
// chosen rows, deleted rows, a tombstone, an extra row). verify must name exactly those records per
// field; repair must fix exactly those and nothing else; a second repair must find nothing to do;
// rollback must put the corrupted values back byte for byte.
#include "tests/integration/verify_fixture.h"

#include "common/runs.h"
#include "ctl/field_counts.h"
#include "ctl/plan.h"
#include "ctl/repair.h"
#include "ctl/sorted_source.h"

#include <google/protobuf/util/message_differencer.h>

#include <algorithm>
#include <filesystem>
#include <random>

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

// The defect: a record whose cell the mapping rejects was counted as "not compared" and, because
// its row was then never met, also as "in the database but gone from the source".
TEST_F(VerifyRepair, R7_ARejectedRecordIsNotComparedAndNotGone) {
  auto rows = sheet_rows();
  rows.at(7)[bench::kScore] = "not a number";
  write_sheet(rows);
  const auto report = ctl::verify_source(config_, source());
  EXPECT_EQ(report.rejected_records, 1) << ctl::format_report(report);
  EXPECT_EQ(report.extra_in_database, 0) << ctl::format_report(report);
  EXPECT_EQ(report.source_records, kRows - 1);
  EXPECT_EQ(report.matching, kRows - 1);
  EXPECT_FALSE(report.drift()) << ctl::format_report(report);
}

// A key the sheet has twice: the producer keeps the first row and rejects the second; verify compares
// the first and counts the second as rejected, not as a record.
TEST_F(VerifyRepair, R7_ADuplicateKeyIsComparedOnceAndCountedAsRejected) {
  auto rows = sheet_rows();
  auto twin = rows.at(4);
  twin[bench::kNotes] += " (the later row)";
  rows.push_back(twin);
  write_sheet(rows);
  const auto report = ctl::verify_source(config_, source());
  EXPECT_EQ(report.source_records, kRows) << ctl::format_report(report);
  EXPECT_EQ(report.rejected_records, 1);
  EXPECT_EQ(report.matching, kRows);
  EXPECT_FALSE(report.drift()) << ctl::format_report(report);
}

TEST_F(VerifyRepair, R7_VerifyFindsExactlyTheCorruptedFieldsMissingDeletedAndExtraRecords) {
  const auto planted = plant_standard_corruption();
  Found found;
  ctl::VerifyOptions options;
  options.samples = 100;
  options.memory_budget = 4096;  // forces the external sort to spill and merge several runs
  const auto report = ctl::verify_source(config_, source(), options, found.visitor());
  EXPECT_EQ(found.fields, planted.fields) << ctl::format_report(report);
  EXPECT_EQ(found.missing, planted.missing);
  EXPECT_EQ(found.deleted, planted.deleted);
  EXPECT_EQ(found.extra, planted.extra);
  for (const auto& [field, keys] : planted.fields_by_name()) {
    ASSERT_TRUE(report.fields.count(field)) << field;
    EXPECT_EQ(report.fields.at(field).count, static_cast<int64_t>(keys.size())) << field;
  }
  EXPECT_EQ(report.fields.size(), planted.fields_by_name().size());
  EXPECT_EQ(report.missing_in_database, static_cast<int64_t>(planted.missing.size()));
  EXPECT_EQ(report.deleted_in_database, static_cast<int64_t>(planted.deleted.size()));
  EXPECT_EQ(report.extra_in_database, static_cast<int64_t>(planted.extra.size()));
  EXPECT_EQ(report.matching, kRows - static_cast<int64_t>(planted.record_keys().size()));
  EXPECT_TRUE(report.drift());

  // --fields and --key narrow the comparison to what was asked.
  ctl::VerifyOptions narrow;
  narrow.fields = {"score"};
  const auto only_score = ctl::verify_source(config_, source(), narrow);
  EXPECT_EQ(only_score.fields.size(), 1u);
  EXPECT_TRUE(only_score.fields.count("score"));
  ctl::VerifyOptions one;
  one.keys = {*planted.missing.begin()};
  const auto single = ctl::verify_source(config_, source(), one);
  EXPECT_EQ(single.missing_in_database, 1);
  EXPECT_EQ(single.extra_in_database, 0) << ctl::format_report(single);
  EXPECT_TRUE(single.fields.empty()) << ctl::format_report(single);
}

TEST_F(VerifyRepair, R7_RepairFixesExactlyTheDriftedRecordsOnceAndRollbackRestoresThemByteForByte) {
  const auto planted = plant_standard_corruption();
  Keys drifted = planted.record_keys();
  drifted.insert(planted.extra.begin(), planted.extra.end());
  Keys all = drifted;
  for (int64_t i = 0; i < kRows; ++i) all.insert(key(i));
  const auto corrupted = snapshot(all);
  const auto versions_before = versions();

  // A dry run backs up and publishes nothing.
  ctl::RepairOptions dry;
  dry.mode = ctl::RepairMode::kDryRun;
  const auto preview = ctl::repair_source(config_, source(), dry);
  EXPECT_EQ(Keys(preview.keys.begin(), preview.keys.end()), drifted);
  EXPECT_TRUE(preview.run_id.empty());
  EXPECT_EQ(runs_of_source(), 1);

  const auto repaired = ctl::repair_source(config_, source(), {});
  EXPECT_EQ(Keys(repaired.keys.begin(), repaired.keys.end()), drifted) << ctl::format_repair(repaired, dry.mode);
  EXPECT_EQ(repaired.deletes, static_cast<int64_t>(planted.extra.size()));
  EXPECT_EQ(repaired.upserts, static_cast<int64_t>(planted.record_keys().size()));
  ASSERT_FALSE(repaired.backup_id.empty());
  ASSERT_NO_FATAL_FAILURE(wait_applied(repaired.run_id, static_cast<int64_t>(drifted.size())));

  // A run with trigger repair, as status and runs show it.
  common::RunStore store(*conn_, common::kDefaultHeartbeatInterval);
  const auto run = store.get(repaired.run_id);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->trigger, common::RunTrigger::kRepair);
  EXPECT_EQ(run->status, common::RunStatus::kCompleted);
  EXPECT_EQ(run->counters.events_published, static_cast<int64_t>(drifted.size()));

  // Clean afterwards, and exactly the drifted rows were written (a new _version), no other.
  const auto after = ctl::verify_source(config_, source());
  EXPECT_FALSE(after.drift()) << ctl::format_report(after);
  EXPECT_EQ(after.matching, kRows);
  const auto versions_after = versions();
  Keys rewritten;
  for (const auto& [k, v] : versions_after) {
    const auto it = versions_before.find(k);
    if (it == versions_before.end() || it->second != v) rewritten.insert(k);
  }
  EXPECT_EQ(rewritten, drifted);

  // Idempotent: a second repair finds nothing, backs up nothing, starts no run.
  const auto again = ctl::repair_source(config_, source(), {});
  EXPECT_TRUE(again.keys.empty());
  EXPECT_TRUE(again.run_id.empty());
  EXPECT_TRUE(again.backup_id.empty());
  EXPECT_EQ(runs_of_source(), 2);

  // Rollback: the corrupted rows come back byte for byte (rows that did not exist are removed).
  const auto rolled = ctl::rollback_backup(config_, repaired.backup_id);
  EXPECT_EQ(rolled.rows.size(), drifted.size()) << ctl::format_rollback(rolled);
  EXPECT_EQ(snapshot(all), corrupted);
  for (const auto& row : rolled.rows) EXPECT_EQ(row.removed, planted.missing.count(row.key) > 0) << row.key;
  // ... under a version above what the repair wrote, so verify sees the same drift again.
  for (const auto& k : drifted) {
    if (!planted.missing.count(k)) {
      EXPECT_EQ(versions().at(k), rolled.version) << k;
    }
  }
  Found found;
  ctl::verify_source(config_, source(), {}, found.visitor());
  EXPECT_EQ(found.fields, planted.fields);
  EXPECT_EQ(found.missing, planted.missing);
  EXPECT_EQ(found.deleted, planted.deleted);
  EXPECT_EQ(found.extra, planted.extra);
}

TEST_F(VerifyRepair, R7_RepairDoesNotTakeThePlaceOfAQueuedRun) {
  plant_standard_corruption();
  common::RunStore store(*conn_, common::kDefaultHeartbeatInterval);
  const auto queued = store.trigger(source().name, common::RunTrigger::kManual, common::WhenRunning::kRefuse);
  EXPECT_THROW(ctl::repair_source(config_, source(), {}), common::RunConflict);
  EXPECT_EQ(store.get(queued.run_id)->status, common::RunStatus::kQueued);
  EXPECT_EQ(store.get(queued.run_id)->trigger, common::RunTrigger::kManual);
  store.cancel(source().name);
  const auto repaired = ctl::repair_source(config_, source(), {});
  EXPECT_FALSE(repaired.keys.empty());
  EXPECT_EQ(store.get(repaired.run_id)->trigger, common::RunTrigger::kRepair);
}

TEST_F(VerifyRepair, R7_RepairWithKeyAndFieldsTouchesOnlyThoseRecords) {
  const auto planted = plant_standard_corruption();
  ctl::RepairOptions one;
  one.keys = {key(9)};
  const auto r = ctl::repair_source(config_, source(), one);
  EXPECT_EQ(r.keys, std::vector<std::string>{key(9)});
  ASSERT_NO_FATAL_FAILURE(wait_applied(r.run_id, 1));
  ctl::RepairOptions by_field;
  by_field.fields = {"status"};
  const auto s = ctl::repair_source(config_, source(), by_field);
  EXPECT_EQ(s.keys, std::vector<std::string>{key(19)});
  ASSERT_NO_FATAL_FAILURE(wait_applied(s.run_id, 1));
  Found found;
  ctl::verify_source(config_, source(), {}, found.visitor());
  auto expected = planted.fields;
  for (auto it = expected.begin(); it != expected.end();) {
    it = (it->first == key(9) || it->first == key(19)) ? expected.erase(it) : std::next(it);
  }
  EXPECT_EQ(found.fields, expected);
  EXPECT_EQ(found.missing, planted.missing);
  EXPECT_EQ(found.extra, planted.extra);
}

TEST_F(VerifyRepair, R6_FieldCountsOfARunSayPerFieldWhatWasAppliedChangedAndRejected) {
  auto rows = sheet_rows();
  rows.at(1)[bench::kNotes] += " (edited)";
  rows.at(2)[bench::kNotes] += " (edited)";
  rows.at(2)[bench::kStatus] = rows.at(2)[bench::kStatus] == "won" ? "lost" : "won";
  rows.at(7)[bench::kScore] = "not a number";
  write_sheet(rows);
  const auto report = runner_.run(source());
  ASSERT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
  ASSERT_EQ(report.changed_records, 2u);
  ASSERT_NO_FATAL_FAILURE(wait_applied(report.run_id, 2));
  common::RunStore store(*conn_, common::kDefaultHeartbeatInterval);
  const auto run = store.get(report.run_id);
  ASSERT_TRUE(run.has_value());
  pqxx::work tx(*conn_);
  std::map<std::string, ctl::FieldCount> by_field;
  for (const auto& c : ctl::field_counts(tx, config_, source(), report.run_id, run->applied)) by_field[c.field] = c;
  ASSERT_EQ(by_field.size(), config_.entity("lead").fields.size());
  for (const auto& [name, c] : by_field) {
    EXPECT_EQ(c.applied, 2) << name;  // both updated events wrote every mapped field
    const int64_t changed = name == "notes" ? 2 : name == "status" ? 1 : 0;
    EXPECT_EQ(c.changed, changed) << name;
    EXPECT_EQ(c.rejected, name == "score" ? 1 : 0) << name;
  }
  const auto line = ctl::format_field_counts(ctl::field_counts(tx, config_, source(), report.run_id, run->applied));
  EXPECT_NE(line.find(" notes 2/2/0\n"), std::string::npos) << line;
  EXPECT_NE(line.find(" score 2/0/1,"), std::string::npos) << line;
}

// The published events of one run, read back from Kafka: upserted and deleted keys.
struct RunEvents {
  Keys upserted, deleted;
};

class PlanPredicts : public VerifyRepair {
 protected:
  void mutate(const bench::MutationOptions& options) {
    const auto next = source().url + ".next";
    {
      std::ifstream in(source().url, std::ios::binary);
      std::ofstream out(next, std::ios::binary);
      bench::mutate_sheet(in, out, options);
    }
    std::filesystem::rename(next, source().url);
  }
  producers::RunReport run_and_read(RunEvents& out) {
    const auto before = high_watermarks(config_.kafka, config_.kafka.topic);
    auto report = runner_.run(source());
    const auto after = high_watermarks(config_.kafka, config_.kafka.topic);
    for (const auto& m : read_messages(config_.kafka, config_.kafka.topic, before, after)) {
      common::ChangeEvent e;
      EXPECT_TRUE(e.ParseFromString(m.value));
      (e.op() == leadsync::v1::OP_DELETE ? out.deleted : out.upserted).insert(e.key());
    }
    return report;
  }
};

TEST_F(PlanPredicts, R7_PlanOnAMutatedSheetPredictsExactlyWhatTheNextRunPublishes) {
  bench::MutationOptions options;
  options.seed = 5;
  options.change_fraction = 0.1;
  options.delete_fraction = 0.05;
  options.add_fraction = 0.04;
  mutate(options);
  const auto watermarks = sum(high_watermarks(config_.kafka, config_.kafka.topic));
  const auto runs = runs_of_source();
  const auto plan = ctl::plan_source(config_, source());
  // A dry run: nothing published, no run recorded, no state moved.
  EXPECT_EQ(sum(high_watermarks(config_.kafka, config_.kafka.topic)), watermarks);
  EXPECT_EQ(runs_of_source(), runs);
  ASSERT_GT(plan.inserts, 0);
  ASSERT_GT(plan.updates, 0);
  ASSERT_GT(plan.deletes, 0);
  EXPECT_FALSE(plan.run_fails) << ctl::format_plan(plan);
  // Each update names its fields; the generator changes 1-3 of six columns (and Updated at).
  int64_t field_changes = 0;
  for (const auto& [field, d] : plan.update_fields) field_changes += d.count;
  EXPECT_GE(field_changes, 2 * plan.updates) << ctl::format_plan(plan);
  EXPECT_EQ(plan.update_fields.at("updated_at").count, plan.updates) << ctl::format_plan(plan);

  RunEvents events;
  const auto report = run_and_read(events);
  ASSERT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
  EXPECT_EQ(static_cast<int64_t>(report.new_records), plan.inserts);
  EXPECT_EQ(static_cast<int64_t>(report.changed_records), plan.updates);
  EXPECT_EQ(static_cast<int64_t>(report.deleted_records), plan.deletes);
  EXPECT_EQ(static_cast<int64_t>(report.unchanged_records), plan.unchanged);
  Keys upserts(plan.insert_keys.begin(), plan.insert_keys.end());
  upserts.insert(plan.update_keys.begin(), plan.update_keys.end());
  EXPECT_EQ(events.upserted, upserts);
  EXPECT_EQ(events.deleted, Keys(plan.delete_keys.begin(), plan.delete_keys.end()));
}

TEST_F(PlanPredicts, R7_PlanSaysWhenTheMassDeleteGuardrailWouldStopTheRun) {
  bench::MutationOptions options;
  options.change_fraction = 0;
  options.delete_fraction = 0.5;
  mutate(options);
  const auto plan = ctl::plan_source(config_, source());
  EXPECT_TRUE(plan.run_fails);
  EXPECT_NE(plan.guardrail.find("max_delete_fraction"), std::string::npos) << plan.guardrail;
  EXPECT_EQ(plan.deletes, 0);
  RunEvents events;
  const auto report = run_and_read(events);
  EXPECT_EQ(report.status, common::RunStatus::kFailed);
  EXPECT_NE(report.message.find("max_delete_fraction"), std::string::npos) << report.message;
  EXPECT_TRUE(events.deleted.empty());
}

// verify's spill holds each record flat (ctl/sorted_source.h), not as a serialized protobuf: what
// comes back must be the mapped image exactly, whatever the values hold.
TEST(SortedSourceEncoding, R7_TheSpillGivesBackEachImageExactlyEmptyNullUnicodeSeparatorsAndUndeclaredFields) {
  common::EntityConfig entity;
  entity.name = "lead";
  entity.key = "lead_id";
  auto field = [&](const std::string& name, common::FieldType type) {
    common::FieldConfig f;
    f.name = name;
    f.type = type;
    entity.fields.push_back(f);
  };
  field("notes", common::FieldType::kText);
  field("company", common::FieldType::kText);
  field("score", common::FieldType::kInt);
  field("ratio", common::FieldType::kFloat);
  field("tags", common::FieldType::kTextList);
  field("doc", common::FieldType::kJson);
  field("seen", common::FieldType::kTimestamp);
  field("ok", common::FieldType::kBool);
  field("never_set", common::FieldType::kText);

  common::ChangeEvent plain;
  plain.set_key("\xc3\xa9\t\n\"k\\N,;");
  plain.set_entity("lead");
  plain.set_source("sheet");
  plain.set_origin("sheet");
  plain.set_op(leadsync::v1::OP_UPSERT);
  plain.set_checksum(0xfedcba9876543210ull);
  auto& f = *plain.mutable_fields();
  f["notes"].set_string_value("");  // empty, not NULL
  f["company"].set_null_value(true);
  f["score"].set_int_value(-9223372036854775807LL - 1);
  f["ratio"].set_double_value(-0.0);
  for (const char* item : {"", "a,b", "\"q\"", "line\nbreak", "\\N", "\xe6\x97\xa5\xe6\x9c\xac"}) {
    f["tags"].mutable_string_list()->add_values(item);
  }
  f["doc"].set_json_value("{\"a\": [1, \"\\t\"]}");
  f["seen"].set_timestamp_micros(-1);
  f["ok"].set_bool_value(false);
  f["not_in_the_entity"].set_string_value(std::string("nul\0inside", 10));

  common::ChangeEvent odd = plain;  // metadata the mapper does not set, kept as it is
  odd.set_run_id("run-1");
  odd.set_source_version(7);
  odd.set_origin("elsewhere");
  odd.mutable_fields()->erase("score");

  std::string encoded;
  ctl::SortedSource::encode_record(entity, "sheet", "linked-key", 42, plain, encoded);
  const auto second = encoded.size();
  ctl::SortedSource::encode_record(entity, "sheet", odd.key(), 43, odd, encoded);
  const std::string_view a = std::string_view(encoded).substr(0, second), b = std::string_view(encoded).substr(second);

  for (const auto& [entry, event] : {std::pair{a, &plain}, std::pair{b, &odd}}) {
    common::ChangeEvent back;
    ctl::SortedSource::image(entity, "sheet", entry, back);
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(back, *event))
        << back.DebugString() << " vs " << event->DebugString();
  }
  ctl::FlatEntry flat;
  ctl::SortedSource::decode(entity, a, flat);
  EXPECT_EQ(flat.match_key, "linked-key");
  EXPECT_EQ(flat.key, plain.key());
  EXPECT_EQ(flat.position, 42u);
  ASSERT_EQ(flat.values.size(), entity.fields.size());
  EXPECT_EQ(flat.values[0].kind, common::Value::kStringValue);
  EXPECT_EQ(flat.values[0].bytes, "");
  EXPECT_EQ(flat.values[1].kind, common::Value::kNullValue);
  EXPECT_EQ(flat.values[8].kind, ctl::FlatValue::kAbsent);
  for (std::size_t i = 0; i + 1 < entity.fields.size(); ++i) {
    EXPECT_TRUE(common::same_value(ctl::to_value(flat.values[i]), f.at(entity.fields[i].name))) << entity.fields[i].name;
  }
  ctl::SortedSource::decode(entity, b, flat);
  EXPECT_EQ(flat.match_key, odd.key());
  EXPECT_EQ(flat.values[2].kind, ctl::FlatValue::kAbsent);  // score, erased
}

// Values that COPY escapes or that look like its NULL, empty against NULL, unicode, and keys whose
// byte order is not their linguistic order (A < Z < a < b < ä < é): verify reads the table in
// COLLATE "C" and sorts the source by bytes, so it must find no drift after a sync, and exactly the
// corruption planted afterwards — also when the sheet is shuffled and sorted in many spilled runs.
TEST_F(VerifyRepair, R7_VerifyAgreesWithPostgreSQLOnAwkwardValuesAndOnKeysWhoseOrderDependsOnTheCollation) {
  auto rows = sheet_rows();
  const std::vector<std::pair<std::string, std::string>> awkward = {
      {"a-1", "tab\there"},
      {"A-2", "line\nbreak and \r carriage"},
      {"\xc3\xa4-3", "quote \"q\", comma; semicolon"},
      {"b-4", ""},  // an empty cell: NULL
      {"\xc3\xa9-5", "back\\slash \\N"},
      {"Z-6", "\\N"},  // COPY's NULL marker as text
      {"a b-7", "\xc3\xbc" "n" "\xc3\xaf" "c" "\xc3\xb6" "d" "\xc3\xa9 \xe2\x9c\x93 \xe6\x97\xa5\xe6\x9c\xac"},
      {"~-8", "trailing backslash \\"},
  };
  for (std::size_t i = 0; i < awkward.size(); ++i) {
    auto row = rows.at(i);
    row[bench::kLeadId] = awkward[i].first;
    row[bench::kEmail] = "awkward" + std::to_string(i) + "@example.com";
    row[bench::kNotes] = awkward[i].second;
    row[bench::kCompany] = awkward[i].second;
    rows.push_back(row);
  }
  write_sheet(rows);
  ASSERT_NO_FATAL_FAILURE(sync());
  const auto clean = ctl::verify_source(config_, source());
  EXPECT_FALSE(clean.drift()) << ctl::format_report(clean);
  EXPECT_EQ(clean.matching, kRows + static_cast<int64_t>(awkward.size()));

  Corruption planted;
  planted.fields = {{"\xc3\xa4-3", "notes"}, {"Z-6", "company"}, {"a-1", "notes"}};
  planted.missing = {"A-2"};
  planted.extra = {"\xc3\xa9-extra"};
  corrupt(planted);
  {
    pqxx::work tx(*conn_);  // NULL against empty, both ways
    tx.exec_params("UPDATE " + table() + " SET notes = '' WHERE lead_id = $1", "b-4");
    tx.exec_params("UPDATE " + table() + " SET company = NULL WHERE lead_id = $1", "\xc3\xa9-5");
    tx.commit();
  }
  planted.fields.insert({"b-4", "notes"});
  planted.fields.insert({"\xc3\xa9-5", "company"});

  // The sheet in byte order of its keys (compared as it is read: nothing sorted) and shuffled (found
  // out of order, then sorted in one run or in many spilled ones); with a visitor (repair's way,
  // always sorted) and without (verify's): the same findings, in the same order.
  auto by_key = rows;
  std::sort(by_key.begin(), by_key.end(), [](const auto& a, const auto& b) { return a[bench::kLeadId] < b[bench::kLeadId]; });
  auto shuffled = rows;
  std::mt19937 shuffle_seed(7);
  std::shuffle(shuffled.begin(), shuffled.end(), shuffle_seed);
  for (const auto* sheet : {&by_key, &shuffled}) {
    write_sheet(*sheet);
    for (const std::size_t budget : {std::size_t{64} << 20, std::size_t{4096}}) {
      Found found;
      ctl::VerifyOptions options;
      options.samples = 100;
      options.memory_budget = budget;
      const auto report = ctl::verify_source(config_, source(), options, found.visitor());
      const auto plain = ctl::verify_source(config_, source(), options);
      SCOPED_TRACE(std::string(sheet == &by_key ? "sorted" : "shuffled") + " sheet, budget " + std::to_string(budget));
      EXPECT_EQ(ctl::report_json(plain), ctl::report_json(report));
      EXPECT_EQ(found.fields, planted.fields) << ctl::format_report(report);
      EXPECT_EQ(found.missing, planted.missing);
      EXPECT_EQ(found.extra, planted.extra);
      EXPECT_TRUE(found.deleted.empty());
      EXPECT_EQ(report.matching, kRows + static_cast<int64_t>(awkward.size()) - 6);
      // Findings come in byte order of the keys, as the merge meets them.
      const auto& notes = report.fields.at("notes").sample_keys;
      EXPECT_TRUE(std::is_sorted(notes.begin(), notes.end())) << ctl::format_report(report);
      EXPECT_EQ(notes.front(), "a-1");
    }
  }
}

// The table is read in a thread of its own (ctl/table_cursor.h TableStream): what goes wrong there
// reaches the caller as an error that says what could not be read, not a hang or a crash.
TEST_F(VerifyRepair, R7_VerifySaysWhichTableItCouldNotRead) {
  {
    pqxx::work tx(*conn_);
    tx.exec("ALTER TABLE " + table() + " RENAME TO leads_elsewhere");
    tx.commit();
  }
  std::string error;
  try {
    ctl::verify_source(config_, source());
  } catch (const std::exception& e) {
    error = e.what();
  }
  {
    pqxx::work tx(*conn_);
    tx.exec("ALTER TABLE " + common::qualified(*conn_, config_.postgres.schema, "leads_elsewhere") +
            " RENAME TO leads");
    tx.commit();
  }
  EXPECT_NE(error.find("cannot read the table"), std::string::npos) << error;
  EXPECT_NE(error.find(config_.postgres.schema + ".leads"), std::string::npos) << error;
  const auto again = ctl::verify_source(config_, source());
  EXPECT_FALSE(again.drift()) << ctl::format_report(again);
}

}  // namespace
}  // namespace leadsync::testing
