// R6, R13 — properties of the apply path (design.md §4) against the real PostgreSQL, through the real
// code the worker runs: PostgresTarget::apply (validation, identities, the collapse, the merge
// statement, isolation), one poll per call. Events are full images
// (or deletes) of the example `lead` entity over a few awkward keys, with versions from a small range
// so that ties, duplicates and replays of older events after newer ones are common.
#include <gtest/gtest.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/mapping.h"
#include "common/pg.h"
#include "common/schema.h"
#include "tests/integration/cluster.h"
#include <prometheus/registry.h>

#include "workers/collapse.h"
#include "workers/metrics.h"
#include "workers/targets/postgres_target.h"
#include "workers/validate.h"

namespace leadsync::testing {
namespace {

using common::ChangeEvent;
using common::EntityConfig;
using common::Value;
using workers::ApplyCounts;
using Counts = std::map<std::string, ApplyCounts>;  // per run_id
using Text = std::optional<std::string>;            // NULL or the text of a column

// Keys that need quoting in an array literal or look like SQL NULL.
const std::vector<std::string> kKeys = {"lead-1", "NULL", "quote\"3", "comma,4", " space 5 ", "back\\slash6",
                                        "{brace}7", "Zoë-日本-8"};
// Text is made of pieces that stress the text[] literals the applier builds.
const std::vector<std::string> kPieces = {"a", "Zoë", " ", ",", "\"", "'", "\\", "{", "}", "NULL", "日本",
                                          "🙂", "\t", "\n", "x y", ";", "$1", "\x01", "e\u0301"};
constexpr int64_t kMinMicros = -62'135'596'800'000'000;  // 0001-01-01 00:00:00 UTC
constexpr int64_t kEndMicros = 253'402'300'800'000'000;  // 10000-01-01, exclusive

// A row as the properties see it: the fields in declaration order, then the bookkeeping columns.
struct Row {
  std::vector<Value> fields;
  int64_t version = 0;
  bool deleted = false;
};
using Table = std::map<std::string, Row>;

Value null_value() {
  Value v;
  v.set_null_value(true);
  return v;
}
std::vector<Value> nulls(const EntityConfig& lead) { return std::vector<Value>(lead.fields.size(), null_value()); }
bool is_delete(const ChangeEvent& e) { return e.op() == v1::OP_DELETE; }
std::vector<Value> fields_of(const EntityConfig& lead, const ChangeEvent& e) {
  std::vector<Value> out;
  for (const auto& f : lead.fields) out.push_back(e.fields().at(f.name));
  return out;
}
// The row an event makes of a key never seen.
Row row_of(const EntityConfig& lead, const ChangeEvent& e) {
  return Row{is_delete(e) ? nulls(lead) : fields_of(lead, e), e.source_version(), is_delete(e)};
}
Text text_of(const pqxx::field& cell) { return cell.is_null() ? Text() : Text(std::string(cell.c_str(), cell.size())); }
// Reads a column's text back as its field's type (the session runs with TimeZone UTC, DateStyle ISO).
Value from_sql(const common::FieldConfig& f, const Text& text) {
  if (!text) return null_value();
  auto v = common::value_from_sql_text(f, *text);
  if (!v) RC_FAIL("field '" + f.name + "': cannot read back '" + *text + "'");
  return *v;
}
// Fails the current case with `problem` unless it is empty.
void require(const std::string& problem) {
  if (!problem.empty()) RC_FAIL(problem);
}

std::string pick_text() {
  std::string s;
  for (int n = *rc::gen::inRange(0, 6); n > 0; --n) s += *rc::gen::elementOf(kPieces);
  return s;
}

Value pick_value(const common::FieldConfig& f) {
  if (!f.required && *rc::gen::inRange(0, 5) == 0) return null_value();
  using Extremes = std::vector<int64_t>;
  Value v;
  switch (f.type) {
    case common::FieldType::kText:
      // A required text is never empty (validate_event rejects it, like an empty required cell).
      v.set_string_value(f.required ? "r" + pick_text() : pick_text());
      break;
    case common::FieldType::kInt:
      v.set_int_value(*rc::gen::oneOf(rc::gen::arbitrary<int64_t>(),
                                      rc::gen::elementOf(Extremes{std::numeric_limits<int64_t>::min(), 0,
                                                                  std::numeric_limits<int64_t>::max()})));
      break;
    case common::FieldType::kTimestamp:
      v.set_timestamp_micros(*rc::gen::oneOf(rc::gen::inRange(kMinMicros, kEndMicros),
                                             rc::gen::elementOf(Extremes{kMinMicros, -1, 0, kEndMicros - 1})));
      break;
    case common::FieldType::kTextList:
      v.mutable_string_list();  // an empty list is a value, not NULL
      for (int n = *rc::gen::inRange(0, 4); n > 0; --n) v.mutable_string_list()->add_values(pick_text());
      break;
    default: RC_FAIL("the lead entity has a field of a type these properties do not generate: " + f.name);
  }
  return v;
}

// The events of one case. The same (key, version) always carries the same content, so that "the
// newest event per key" names one state even when versions tie; the run id varies.
class EventPool {
 public:
  EventPool(const EntityConfig& lead, std::string source) : lead_(lead), source_(std::move(source)) {}

  ChangeEvent pick(const std::string& key, int64_t version, bool may_delete) {
    auto [it, fresh] = made_.try_emplace({key, version});
    auto& e = it->second;
    if (fresh) {
      e.set_entity(lead_.name);
      e.set_key(key);
      e.set_source(source_);
      e.set_source_version(version);
      e.set_op(may_delete && *rc::gen::inRange(0, 4) == 0 ? v1::OP_DELETE : v1::OP_UPSERT);
      for (const auto& f : lead_.fields) {
        if (!is_delete(e)) (*e.mutable_fields())[f.name] = pick_value(f);
      }
      e.set_event_id(common::make_event_id(source_, lead_.name, key, version, common::fields_checksum(e.fields())));
    }
    auto copy = e;
    copy.set_run_id(*rc::gen::elementOf(std::vector<std::string>{"", "run-a", "run-b"}));
    return copy;
  }

  std::vector<ChangeEvent> pick_many(const std::vector<std::string>& keys, int64_t max_version, int count) {
    std::vector<ChangeEvent> out;
    while (std::ssize(out) < count) {
      const auto key = *rc::gen::elementOf(keys);
      out.push_back(pick(key, *rc::gen::inRange<int64_t>(1, max_version + 1), true));
    }
    return out;
  }

 private:
  const EntityConfig& lead_;
  std::string source_;
  std::map<std::pair<std::string, int64_t>, ChangeEvent> made_;
};

std::vector<std::string> pick_keys() {
  return {kKeys.begin(), kKeys.begin() + *rc::gen::inRange<std::ptrdiff_t>(1, std::ssize(kKeys) + 1)};
}

// Any delivery order, cut into polls, and now and then a batch delivered again (a crash between the
// commit and the offset commit replays it: design.md §4, step 4).
std::vector<std::vector<ChangeEvent>> pick_batches(std::vector<ChangeEvent> events) {
  for (std::size_t i = events.size(); i > 1; --i) {
    std::swap(events[i - 1], events[*rc::gen::inRange<std::size_t>(0, i)]);
  }
  std::vector<std::vector<ChangeEvent>> batches;
  for (std::size_t at = 0, n = 0; at < events.size(); at += n) {
    n = std::min(events.size() - at, *rc::gen::inRange<std::size_t>(1, 9));
    batches.emplace_back(events.begin() + at, events.begin() + at + n);
  }
  if (!batches.empty() && *rc::gen::inRange(0, 3) == 0) {
    auto replay = batches[*rc::gen::inRange<std::size_t>(0, batches.size())];
    batches.push_back(std::move(replay));
  }
  return batches;
}

// The design's semantics (design.md §4), written without the SQL: in a batch the newest event per
// key wins (on equal versions the greater event id; the same event twice: the first) and the
// others are stale; the winner applies only over an
// older version; an upsert writes every field, a delete keeps the row's last values (NULLs for a
// key never seen). Updates `table` and returns the counts the applier must report.
Counts model_apply(Table& table, const std::vector<ChangeEvent>& batch, const EntityConfig& lead) {
  Counts counts;
  std::map<std::string, std::size_t> winner;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    auto& w = winner.try_emplace(batch[i].key(), i).first->second;
    if (workers::newer_than(batch[i], batch[w])) w = i;
  }
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const auto& e = batch[i];
    auto& c = counts[e.run_id()];
    const auto it = table.find(e.key());
    if (winner.at(e.key()) != i || (it != table.end() && it->second.version >= e.source_version())) {
      c.stale++;
    } else if (it == table.end()) {
      table[e.key()] = row_of(lead, e);
      (is_delete(e) ? c.deleted : c.inserted)++;
    } else {
      Row& row = it->second;
      Row next{is_delete(e) ? row.fields : fields_of(lead, e), e.source_version(), is_delete(e)};
      bool changed = next.deleted != row.deleted;
      for (std::size_t f = 0; f < next.fields.size(); ++f) {
        changed |= !common::same_value(next.fields[f], row.fields[f]);
      }
      (!changed ? c.unchanged : next.deleted ? c.deleted : c.updated)++;
      row = std::move(next);
    }
  }
  return counts;
}

// Per run, the non-zero counts in words: comparable, and readable in a counterexample.
std::map<std::string, std::string> described(const Counts& counts) {
  std::map<std::string, std::string> out;
  for (const auto& [run, c] : counts) {
    if (c.total() == 0) continue;
    out[run] = "inserted " + std::to_string(c.inserted) + ", updated " + std::to_string(c.updated) + ", deleted " +
               std::to_string(c.deleted) + ", unchanged " + std::to_string(c.unchanged) + ", stale " +
               std::to_string(c.stale) + ", failed " + std::to_string(c.failed);
  }
  return out;
}

// Empty when the rows agree on every field, the version and the deleted flag.
std::string row_problem(const EntityConfig& lead, const std::string& key, const Row& want, const Row& got) {
  const auto where = "key '" + key + "'";
  if (want.version != got.version || want.deleted != got.deleted) {
    return where + ": _version " + std::to_string(got.version) + (got.deleted ? ", deleted" : ", live") +
           "; expected " + std::to_string(want.version) + (want.deleted ? ", deleted" : ", live");
  }
  for (std::size_t i = 0; i < lead.fields.size(); ++i) {
    if (!common::same_value(want.fields[i], got.fields[i])) {
      return where + ", field '" + lead.fields[i].name + "': " + common::describe_value(got.fields[i]) + ", expected " +
             common::describe_value(want.fields[i]);
    }
  }
  return "";
}

// Empty when `got` has exactly the keys of `want`, each with a row `fits` accepts.
template <typename Fits>
std::string table_problem(const Table& want, const Table& got, Fits&& fits) {
  if (want.size() != got.size()) {
    return "the table has " + std::to_string(got.size()) + " keys, expected " + std::to_string(want.size());
  }
  for (const auto& [key, row] : want) {
    if (!got.count(key)) return "key '" + key + "' is missing from the table";
    if (auto p = fits(key, row, got.at(key)); !p.empty()) return p;
  }
  return "";
}

// What every delivery order must converge to (R13), from the events alone: per key the version and
// the op of the newest event and, for a live record, its fields. A deleted record keeps NULLs or
// the values of one older upsert of the key: which depends on the delivery order (a delete applied
// before an older upsert arrives keeps what the row had then), so only that is required of it.
std::string convergence_problem(const EntityConfig& lead, const std::vector<ChangeEvent>& events, const Table& got) {
  Table newest;
  for (const auto& e : events) {
    auto& n = newest[e.key()];
    if (e.source_version() > n.version) n = row_of(lead, e);
  }
  return table_problem(newest, got, [&](const std::string& key, const Row& want, const Row& row) {
    auto problem = row_problem(lead, key, want, row);
    for (const auto& older : events) {
      if (want.deleted && older.key() == key && !is_delete(older) && older.source_version() < want.version &&
          row_problem(lead, key, Row{fields_of(lead, older), want.version, true}, row).empty()) {
        problem.clear();
      }
    }
    return problem;
  });
}

// The `lead` table of an isolated schema and the applier the worker would build for it.
class LeadTable {
 public:
  explicit LeadTable(const std::string& name)
      : config_(isolated_example_config(unique_tag(name))),
        conn_(connect(config_)),
        sources_("prop-" + config_.postgres.schema + "#") {
    common::migrate(*conn_, config_);
    pqxx::nontransaction(*conn_).exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO'");  // for from_sql
    lead_ = &config_.entity("lead");
    table_ = common::qualified(*conn_, config_.postgres.schema, lead_->table);
    target_ = std::make_unique<workers::PostgresTarget>(config_, metrics_);
    if (!target_->connect()) throw std::runtime_error("the worker's target cannot connect");
  }
  LeadTable(const LeadTable&) = delete;
  LeadTable& operator=(const LeadTable&) = delete;
  ~LeadTable() {
    try {
      pqxx::work tx(*conn_);
      tx.exec("DROP SCHEMA IF EXISTS " + conn_->quote_name(config_.postgres.schema) + " CASCADE");
      tx.exec_params("DELETE FROM leadsync.record_changes WHERE left(source, length($1)) = $1", sources_);
      tx.commit();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cleanup failed: %s\n", e.what());
    }
  }

  const EntityConfig& lead() const { return *lead_; }
  const std::string& source() const { return source_; }

  // A fresh case: an empty table and a source name of its own, so that its audit rows are its own.
  void reset() {
    pqxx::work tx(*conn_);
    tx.exec("TRUNCATE " + table_);
    tx.commit();
    source_ = sources_ + std::to_string(++cases_);
  }

  // One poll of the worker (design.md §4): validate, collapse to the newest event per key, apply in
  // one transaction. Returns the counts per run, the collapsed events included as stale.
  Counts apply_batch(const std::vector<ChangeEvent>& batch) {
    std::vector<workers::Record> records(batch.size());
    std::vector<workers::Record*> pointers;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      require(workers::validate_event(config_, batch[i]));
      records[i].event = batch[i];
      pointers.push_back(&records[i]);
    }
    auto counts = target_->apply(pointers);
    for (const auto& r : records) {
      if (r.failure) RC_FAIL("an event failed: " + r.failure->message);
    }
    return counts;
  }

  Table read() {
    std::string columns = conn_->quote_name(lead_->key);
    for (const auto& f : lead_->fields) columns += ", " + conn_->quote_name(f.name);
    pqxx::work tx(*conn_);
    Table out;
    for (const auto& r : tx.exec("SELECT " + columns + ", _version, _deleted FROM " + table_)) {
      Row& row = out[r[0].as<std::string>()];
      int column = 1;
      for (const auto& f : lead_->fields) row.fields.push_back(from_sql(f, text_of(r[column++])));
      row.version = r[column].as<int64_t>();
      row.deleted = r[column + 1].as<bool>();
    }
    return out;
  }

  // Every column of every row (_source and _synced_at included) and how many audit rows this case
  // wrote (found through the (entity, key) index: the shared audit table is large).
  std::string digest() {
    pqxx::work tx(*conn_);
    const auto key = conn_->quote_name(lead_->key);
    const auto audit_rows = "(SELECT count(*) FROM leadsync.field_changes f WHERE f.entity = $2 AND f.key IN (SELECT " +
                            key + " FROM " + table_ + ") AND f.source = $1)";
    return tx.exec_params1("SELECT coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t." + key + ")), '') || " +
                               "' audit rows: ' || " + audit_rows + " FROM " + table_ + " t",
                           source_, lead_->name)[0]
        .as<std::string>();
  }

  // The row's record of its creation (its _created_* columns): event id, version, run.
  struct Creation {
    Text event_id, run_id;
    std::optional<int64_t> version;
    bool operator==(const Creation&) const = default;
  };
  Creation creation(const std::string& key) {
    pqxx::work tx(*conn_);
    const auto r = tx.exec_params1("SELECT _created_event, _created_version, _created_run FROM " + table_ + " WHERE " +
                                       conn_->quote_name(lead_->key) + " = $1",
                                   key);
    return {text_of(r[0]), text_of(r[2]), r[1].is_null() ? std::nullopt : std::optional<int64_t>(r[1].as<int64_t>())};
  }

  // This case's audit rows of one key, oldest first.
  struct Change {
    std::string field;
    Text old_value, new_value;
    std::string event_id;
  };
  std::vector<Change> trail(const std::string& key) {
    pqxx::work tx(*conn_);
    std::vector<Change> out;
    for (const auto& r : tx.exec_params("SELECT field, old_value, new_value, coalesce(event_id, '') FROM "
                                        "leadsync.field_changes WHERE source = $1 AND entity = $2 AND key = $3 ORDER BY id",
                                        source_, lead_->name, key)) {
      out.push_back({r[0].as<std::string>(), text_of(r[1]), text_of(r[2]), r[3].as<std::string>()});
    }
    return out;
  }

  // One row's fields and _deleted as the audit spells them (column::text), by name.
  std::map<std::string, Text> row_text(const std::string& key) {
    std::string columns;
    for (const auto& f : lead_->fields) columns += conn_->quote_name(f.name) + "::text, ";
    pqxx::work tx(*conn_);
    const auto r = tx.exec_params1("SELECT " + columns + "_deleted::text FROM " + table_ + " WHERE " +
                                       conn_->quote_name(lead_->key) + " = $1",
                                   key);
    std::map<std::string, Text> out;
    int column = 0;
    for (const auto& f : lead_->fields) out[f.name] = text_of(r[column++]);
    out["_deleted"] = text_of(r[column]);
    return out;
  }

  // This case's audit rows of one event for one key: field -> (old value, new value) as text.
  std::map<std::string, std::pair<Text, Text>> audit(const std::string& event_id, const std::string& key) {
    pqxx::work tx(*conn_);
    std::map<std::string, std::pair<Text, Text>> out;
    for (const auto& r : tx.exec_params("SELECT field, old_value, new_value FROM leadsync.field_changes "
                                        "WHERE source = $1 AND event_id = $2 AND entity = $3 AND key = $4",
                                        source_, event_id, lead_->name, key)) {
      out[r[0].as<std::string>()] = {text_of(r[1]), text_of(r[2])};
    }
    return out;
  }

 private:
  // conn_ and target_ refer to config_ (the target keeps a reference to it): config_ is
  // declared first, and the class is neither copied nor moved.
  common::Config config_;
  std::unique_ptr<pqxx::connection> conn_;
  const EntityConfig* lead_ = nullptr;
  std::string table_;
  prometheus::Registry registry_;
  workers::WorkerMetrics metrics_{registry_};
  std::unique_ptr<workers::PostgresTarget> target_;  // the worker's batch path
  std::string sources_, source_;  // the prefix of this test's source names, and this case's
  int cases_ = 0;
};

// Runs a property through rapidcheck's GoogleTest glue (a failure fails the test with the shrunk
// counterexample) and returns how many cases ran, so that each test can prove it ran >= 100.
template <typename Property>
int run_property(Property&& property) {
  int cases = 0;
  rc::detail::checkGTest([&] {
    ++cases;
    property();
  });
  std::printf("ran %d cases\n", cases);
  return cases;
}

TEST(ApplyProperties, R13_AnyInterleavingOfBatchesConvergesToTheNewestStatePerKey) {
  LeadTable db("apply_converge");
  const auto& lead = db.lead();
  const int cases = run_property([&] {
    db.reset();
    EventPool pool(lead, db.source());
    const auto events = pool.pick_many(pick_keys(), 6, *rc::gen::inRange(1, 41));
    Table model;
    ApplyCounts seen;
    for (const auto& batch : pick_batches(events)) {
      const auto want = model_apply(model, batch, lead);
      RC_ASSERT(described(want) == described(db.apply_batch(batch)));
      for (const auto& [run, c] : want) seen += c;
    }
    RC_CLASSIFY(seen.stale > 0, "stale events");
    RC_CLASSIFY(seen.deleted > 0, "deletes");
    RC_CLASSIFY(seen.updated > 0, "updates");
    RC_CLASSIFY(seen.unchanged > 0, "unchanged");
    const auto table = db.read();
    require(table_problem(model, table, [&](const std::string& key, const Row& want, const Row& got) {
      return row_problem(lead, key, want, got);
    }));
    require(convergence_problem(lead, events, table));
  });
  EXPECT_GE(cases, 100);
}

TEST(ApplyProperties, R6_AFullEventWritesEveryMappedFieldAndAuditsEachChangedOne) {
  LeadTable db("apply_every_field");
  const auto& lead = db.lead();
  const int cases = run_property([&] {
    db.reset();
    EventPool pool(lead, db.source());
    const auto keys = pick_keys();
    for (const auto& batch : pick_batches(pool.pick_many(keys, 5, *rc::gen::inRange(0, 25)))) db.apply_batch(batch);
    const auto before = db.read();
    std::map<std::string, LeadTable::Creation> created_before;
    for (const auto& [key, row] : before) created_before[key] = db.creation(key);
    std::vector<ChangeEvent> full;  // one newer full image per key, over whatever state it had
    for (const auto& key : keys) full.push_back(pool.pick(key, *rc::gen::inRange<int64_t>(6, 10), false));
    Table model = before;
    const auto want = model_apply(model, full, lead);
    RC_ASSERT(described(want) == described(db.apply_batch(full)));

    const auto after = db.read();
    for (const auto& e : full) {
      const auto now = fields_of(lead, e);
      require(row_problem(lead, e.key(), Row{now, e.source_version(), false}, after.at(e.key())));
      // The audit (R6): a new record is no audit row but its creation on the row (this event, its
      // version and run); an update is one row per changed field and leaves the creation as it was.
      const auto audit = db.audit(e.event_id(), e.key());
      std::set<std::string> want_fields, got_fields;
      const auto was = before.find(e.key());
      if (was == before.end()) {
        RC_ASSERT(db.creation(e.key()) ==
                  (LeadTable::Creation{e.event_id(), e.run_id(), std::optional<int64_t>(e.source_version())}));
      } else {
        RC_ASSERT(db.creation(e.key()) == created_before.at(e.key()));
        if (was->second.deleted) want_fields.insert("_deleted");
        for (std::size_t i = 0; i < now.size(); ++i) {
          if (!common::same_value(was->second.fields[i], now[i])) want_fields.insert(lead.fields[i].name);
        }
      }
      for (const auto& [field, change] : audit) got_fields.insert(field);
      RC_ASSERT(got_fields == want_fields);
      for (const auto& [field, change] : audit) {
        if (field == "_deleted") RC_ASSERT(change == (std::pair<Text, Text>{"true", "false"}));
        if (const auto* f = lead.field(field)) {  // old and new value, read back as the field's type
          const auto i = static_cast<std::size_t>(f - lead.fields.data());
          RC_ASSERT(common::same_value(from_sql(*f, change.first), was->second.fields[i]));
          RC_ASSERT(common::same_value(from_sql(*f, change.second), now[i]));
        }
      }
    }
  });
  EXPECT_GE(cases, 100);
}

// R6: a record's history is complete — its creation, read from the row, plus its audited changes
// replayed in order give exactly the row as it is. Checked backwards: undoing the audit rows newest
// first from the row must arrive at the image of the event the row names as its creation.
TEST(ApplyProperties, R6_TheCreationOnTheRowAndTheAuditedChangesAreTheRecordsWholeHistory) {
  LeadTable db("apply_history");
  const auto& lead = db.lead();
  const int cases = run_property([&] {
    db.reset();
    EventPool pool(lead, db.source());
    const auto events = pool.pick_many(pick_keys(), 6, *rc::gen::inRange(1, 41));
    std::map<std::string, const ChangeEvent*> by_event;
    std::map<std::string, std::set<std::string>> runs_of_event;
    for (const auto& e : events) {
      by_event[e.event_id()] = &e;
      runs_of_event[e.event_id()].insert(e.run_id());
    }
    for (const auto& batch : pick_batches(events)) db.apply_batch(batch);
    std::size_t changes = 0;
    for (const auto& [key, row] : db.read()) {
      const auto created = db.creation(key);
      RC_ASSERT(created.event_id.has_value());
      const auto it = by_event.find(*created.event_id);
      if (it == by_event.end()) RC_FAIL(key + ": created by unknown event '" + *created.event_id + "'");
      const ChangeEvent& first = *it->second;
      RC_ASSERT(first.key() == key);
      RC_ASSERT(created.version == std::optional<int64_t>(first.source_version()));
      RC_ASSERT(created.run_id.has_value() && runs_of_event.at(first.event_id()).count(*created.run_id) == 1);

      auto state = db.row_text(key);
      const auto trail = db.trail(key);
      changes += trail.size();
      auto same = [&](const std::string& field, const Text& a, const Text& b) {
        const auto* f = lead.field(field);
        return f ? common::same_value(from_sql(*f, a), from_sql(*f, b)) : a == b;
      };
      for (auto c = trail.rbegin(); c != trail.rend(); ++c) {
        if (c->field == "*") RC_FAIL(key + ": a creation was audited");
        RC_ASSERT(state.count(c->field) == 1);
        const auto by = by_event.find(c->event_id);
        if (by == by_event.end()) RC_FAIL(key + ": a change by unknown event '" + c->event_id + "'");
        RC_ASSERT(by->second->key() == key);
        // Every audited change came after the creation.
        RC_ASSERT(std::pair(by->second->source_version(), by->second->event_id()) >
                  std::pair(first.source_version(), first.event_id()));
        if (!same(c->field, state.at(c->field), c->new_value)) {
          RC_FAIL(key + ": field " + c->field + " is " + state.at(c->field).value_or("NULL") +
                  " where the audit's next change left " + c->new_value.value_or("NULL"));
        }
        state[c->field] = c->old_value;
      }
      // Back at the creation: the creating event's image (a tombstone: no values, deleted).
      RC_ASSERT(state.at("_deleted") == Text(is_delete(first) ? "true" : "false"));
      const auto image = row_of(lead, first).fields;
      for (std::size_t i = 0; i < lead.fields.size(); ++i) {
        const auto& f = lead.fields[i];
        if (!common::same_value(from_sql(f, state.at(f.name)), image[i])) {
          RC_FAIL(key + ": undoing the audit leaves " + f.name + " = " + state.at(f.name).value_or("NULL") +
                  ", not the creating event's value");
        }
      }
    }
    RC_CLASSIFY(changes > 0, "audited changes");
  });
  EXPECT_GE(cases, 100);
}

TEST(ApplyProperties, R13_ApplyingTheSameBatchTwiceChangesNothingAndCountsEveryEventAsStale) {
  LeadTable db("apply_twice");
  const int cases = run_property([&] {
    db.reset();
    EventPool pool(db.lead(), db.source());
    const auto keys = pick_keys();
    for (const auto& batch : pick_batches(pool.pick_many(keys, 5, *rc::gen::inRange(0, 20)))) db.apply_batch(batch);
    const auto batch = pool.pick_many(keys, 8, *rc::gen::inRange(1, 30));
    db.apply_batch(batch);
    const auto once = db.digest();

    const auto again = db.apply_batch(batch);
    RC_ASSERT(db.digest() == once);
    Counts want;
    for (const auto& e : batch) want[e.run_id()].stale++;
    RC_ASSERT(described(want) == described(again));
  });
  EXPECT_GE(cases, 100);
}

}  // namespace
}  // namespace leadsync::testing
