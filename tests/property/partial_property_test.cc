// R6, R13 — partial events, full images, tombstones and equal versions, mixed in any order and cut
// into polls anywhere, through the worker's real batch path (PostgresTarget::apply) against the
// real PostgreSQL. Versions come from a tiny range and event ids from a few names, so ties across
// and within polls are common, with different contents (the same version and event id always
// carry the same content, as event ids derive from it).
#include <gtest/gtest.h>
#include <prometheus/registry.h>
#include <rapidcheck.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/pg.h"
#include "common/schema.h"
#include "tests/integration/cluster.h"
#include "workers/collapse.h"
#include "workers/metrics.h"
#include "workers/targets/postgres_target.h"

namespace leadsync::testing {
namespace {

using common::ChangeEvent;
const std::vector<std::string> kTextFields = {"email", "phone", "status", "notes"};
const std::vector<std::string> kKeys = {"k1", "k\"2", "k,3"};

class PartialLeads {
 public:
  PartialLeads() : config_(isolated_example_config(unique_tag("partial_prop"))), conn_(connect(config_)) {
    config_.entities.at("lead").partial_events = true;
    common::migrate(*conn_, config_);
    table_ = common::qualified(*conn_, config_.postgres.schema, "leads");
    target_ = std::make_unique<workers::PostgresTarget>(config_, metrics_);
    if (!target_->connect()) throw std::runtime_error("the worker's target cannot connect");
  }
  ~PartialLeads() {
    try {
      pqxx::work tx(*conn_);
      tx.exec("DROP SCHEMA IF EXISTS " + conn_->quote_name(config_.postgres.schema) + " CASCADE");
      tx.commit();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "cleanup failed: %s\n", e.what());
    }
  }
  const common::Config& config() const { return config_; }
  void reset() { pqxx::nontransaction(*conn_).exec("TRUNCATE " + table_); }

  // One poll; returns how many events the counts account for.
  int64_t apply(const std::vector<ChangeEvent>& batch) {
    std::vector<workers::Record> records(batch.size());
    std::vector<workers::Record*> pointers;
    for (std::size_t i = 0; i < batch.size(); ++i) {
      records[i].event = batch[i];
      pointers.push_back(&records[i]);
    }
    int64_t accounted = 0;
    for (const auto& [run, c] : target_->apply(pointers)) accounted += c.total();
    for (const auto& r : records) {
      if (r.failure) RC_FAIL("an event failed: " + r.failure->message);
    }
    return accounted;
  }

  struct Row {
    std::map<std::string, std::optional<std::string>> fields;
    int64_t version;
    bool deleted, incomplete;
    std::string event_id, source;
  };
  std::map<std::string, Row> read() {
    pqxx::work tx(*conn_);
    std::map<std::string, Row> out;
    for (const auto& r : tx.exec("SELECT lead_id, email, phone, status, notes, _version, _deleted, _incomplete, "
                                 "_event_id, _source FROM " + table_)) {
      Row row;
      for (int i = 0; i < 4; ++i) {
        row.fields[kTextFields[static_cast<std::size_t>(i)]] =
            r[i + 1].is_null() ? std::nullopt : std::optional<std::string>(r[i + 1].as<std::string>());
      }
      row.version = r[5].as<int64_t>();
      row.deleted = r[6].as<bool>();
      row.incomplete = r[7].as<bool>();
      row.event_id = r[8].as<std::string>();
      row.source = r[9].as<std::string>();
      out[r[0].as<std::string>()] = row;
    }
    return out;
  }

 private:
  common::Config config_;
  std::unique_ptr<pqxx::connection> conn_;
  std::string table_;
  prometheus::Registry registry_;
  workers::WorkerMetrics metrics_{registry_};
  std::unique_ptr<workers::PostgresTarget> target_;
};

enum class Kind { kFull, kPartial, kDelete };

// The same (key, version, event id) is always the same event.
class Pool {
 public:
  explicit Pool(const common::Config& config) : config_(config) {}
  ChangeEvent pick() {
    const auto key = *rc::gen::elementOf(kKeys);
    const auto version = *rc::gen::inRange<int64_t>(1, 5);
    const auto id = *rc::gen::elementOf(std::vector<std::string>{"ev-a", "ev-b", "ev-c"});
    auto [it, fresh] = made_.try_emplace({key, version, id});
    auto& e = it->second;
    if (!fresh) return e;
    e.set_entity("lead");
    e.set_key(key);
    e.set_source_version(version);
    e.set_event_id(id);
    e.set_source(*rc::gen::elementOf(std::vector<std::string>{"crm", "sheet"}));
    const auto kind = *rc::gen::element(Kind::kFull, Kind::kPartial, Kind::kPartial, Kind::kDelete);
    e.set_op(kind == Kind::kDelete ? v1::OP_DELETE : v1::OP_UPSERT);
    auto value = [&] { return *rc::gen::elementOf(std::vector<std::string>{"a", "b", "c"}) + "@" + id; };
    if (kind == Kind::kFull) {
      for (const auto& f : config_.entity("lead").fields) (*e.mutable_fields())[f.name].set_null_value(true);
      for (const auto& f : kTextFields) (*e.mutable_fields())[f].set_string_value(value());
    } else if (kind == Kind::kPartial) {
      e.set_partial(true);
      for (const auto& f : kTextFields) {
        if (*rc::gen::inRange(0, 2) == 0) (*e.mutable_fields())[f].set_string_value(value());
      }
      if (e.fields().empty()) (*e.mutable_fields())["status"].set_string_value(value());
    }
    return e;
  }

 private:
  const common::Config& config_;
  std::map<std::tuple<std::string, int64_t, std::string>, ChangeEvent> made_;
};

// What every order must give, from the events alone: the record follows its newest event (ties by
// event id); each field holds its newest write when that is newer than the newest delete; a field
// whose writes all precede a delete holds NULL or one of those older writes (a tombstone keeps the
// values the row had when it arrived); a row is incomplete while its required e-mail is NULL.
std::string problem(const std::vector<ChangeEvent>& events, const std::map<std::string, PartialLeads::Row>& rows) {
  std::map<std::string, const ChangeEvent*> newest, newest_delete;
  for (const auto& e : events) {
    auto& n = newest[e.key()];
    if (!n || workers::newer_than(e, *n)) n = &e;
    if (e.op() == v1::OP_DELETE) {
      auto& d = newest_delete[e.key()];
      if (!d || workers::newer_than(e, *d)) d = &e;
    }
  }
  if (rows.size() != newest.size()) return "rows: " + std::to_string(rows.size()) + ", keys: " + std::to_string(newest.size());
  for (const auto& [key, n] : newest) {
    if (!rows.count(key)) return "key " + key + " missing";
    const auto& row = rows.at(key);
    const auto where = "key " + key + ": ";
    if (row.version != n->source_version() || row.event_id != n->event_id()) {
      return where + "record at " + std::to_string(row.version) + "/" + row.event_id + ", newest event " +
             std::to_string(n->source_version()) + "/" + n->event_id();
    }
    if (row.deleted != (n->op() == v1::OP_DELETE)) return where + "deleted flag";
    if (row.source != n->source()) return where + "_source " + row.source + ", newest event's " + n->source();
    const auto* d = newest_delete.count(key) ? newest_delete.at(key) : nullptr;
    for (const auto& f : kTextFields) {
      const ChangeEvent* w = nullptr;
      std::set<std::optional<std::string>> allowed{std::nullopt};
      for (const auto& e : events) {
        if (e.key() != key || e.op() == v1::OP_DELETE || !e.fields().count(f)) continue;
        if (!w || workers::newer_than(e, *w)) w = &e;
        if (d && workers::newer_than(*d, e)) allowed.insert(e.fields().at(f).string_value());
      }
      const auto& got = row.fields.at(f);
      if (w && (!d || workers::newer_than(*w, *d))) {
        if (got != w->fields().at(f).string_value()) {
          return where + "field " + f + " = " + got.value_or("NULL") + ", newest write " + w->fields().at(f).string_value();
        }
      } else if (!allowed.count(got)) {
        return where + "field " + f + " = " + got.value_or("NULL") + ", written by no event older than the delete";
      }
    }
    if (row.incomplete != !row.fields.at("email").has_value()) return where + "_incomplete";
  }
  return "";
}

TEST(PartialProperties, R13_PartialsFullImagesTombstonesAndTiesConvergeWhateverTheOrderAndTheCuts) {
  PartialLeads db;
  int cases = 0;
  rc::detail::checkGTest([&] {
    ++cases;
    db.reset();
    Pool pool(db.config());
    std::vector<ChangeEvent> events;
    for (int n = *rc::gen::inRange(1, 25); n > 0; --n) events.push_back(pool.pick());
    // Any delivery order, cut into polls of 1..6.
    auto shuffled = events;
    for (std::size_t i = shuffled.size(); i > 1; --i) {
      std::swap(shuffled[i - 1], shuffled[*rc::gen::inRange<std::size_t>(0, i)]);
    }
    std::set<std::pair<std::string, int64_t>> seen;
    bool tie = false;
    for (std::size_t at = 0, n = 0; at < shuffled.size(); at += n) {
      n = std::min(shuffled.size() - at, *rc::gen::inRange<std::size_t>(1, 7));
      const std::vector<ChangeEvent> poll(shuffled.begin() + static_cast<std::ptrdiff_t>(at),
                                          shuffled.begin() + static_cast<std::ptrdiff_t>(at + n));
      for (const auto& e : poll) tie |= !seen.insert({e.key(), e.source_version()}).second;
      RC_ASSERT(db.apply(poll) == static_cast<int64_t>(poll.size()));  // every event accounted for
    }
    RC_CLASSIFY(tie, "equal versions");
    const auto p = problem(events, db.read());
    if (!p.empty()) RC_FAIL(p);
  });
  std::printf("ran %d cases\n", cases);
  EXPECT_GE(cases, 100);
}

}  // namespace
}  // namespace leadsync::testing
