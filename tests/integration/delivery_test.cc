// R13 — shuffled, duplicated and replayed delivery: whatever order Kafka hands the worker the
// versions of a record in, and however often, the table ends at the newest version of every record
// and the audit trail holds exactly the changes that really happened, nothing else.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::Value;
using Image = std::map<std::string, std::optional<std::string>>;  // field -> printed value, nullopt = NULL

constexpr int kKeys = 500;
constexpr int64_t kCreatedMicros = 1'767'225'600'000'000;  // 2026-01-01 00:00:00 UTC

// The fields of the example `lead` entity (examples/leadsync.yaml), in declaration order.
const std::vector<std::string> kFields = {"first_name", "last_name",    "email", "phone",      "company",    "status",
                                          "assignee",   "lead_sources", "score", "created_at", "updated_at", "notes"};

// How PostgreSQL prints the stored value (`column::text`), which is also what the audit trail
// records; timestamps as epoch microseconds, which the test's queries convert them to. List items
// here are plain lower-case words, so no element needs quoting.
std::optional<std::string> printed(const Value& v) {
  switch (v.kind_case()) {
    case Value::kStringValue: return v.string_value();
    case Value::kIntValue: return std::to_string(v.int_value());
    case Value::kTimestampMicros: return std::to_string(v.timestamp_micros());
    case Value::kStringList: {
      std::string s = "{";
      for (int i = 0; i < v.string_list().values_size(); ++i) s += (i ? "," : "") + v.string_list().values(i);
      return s + "}";
    }
    default: return std::nullopt;
  }
}

// Version j of lead i. Consecutive versions change some fields and keep others, move values to
// and from NULL and the empty list, and carry text that needs escaping on its way into a text[]
// literal. For every fifth lead version 1 repeats version 0: a newer version with the same content.
std::map<std::string, Value> lead_fields(int i, int j) {
  if (i % 5 == 0 && j == 1) j = 0;
  const auto n = std::to_string(i);
  static const char* kStatus[] = {"new", "contacted", "qualified", "won"};
  std::map<std::string, Value> f;
  f["first_name"] = text(j >= 2 ? "Annemarie" + n : "Anne" + n);
  f["last_name"] = text("Lindqvist-" + n);
  f["email"] = text(j % 3 == 2 ? "anne." + n + ".v" + std::to_string(j) + "@example.com" : "anne." + n + "@example.com");
  f["phone"] = j % 2 ? text("+49 30 " + std::to_string(1000 * i + j)) : null();
  f["company"] = text("Acme " + std::to_string(i % 17));
  f["status"] = text(kStatus[j % 4]);
  f["assignee"] = text((i + j) % 2 ? "ana" : "ben");
  f["lead_sources"] = j % 3 == 0 ? list({}) : j % 3 == 1 ? list({"web", "referral"}) : list({"event"});
  f["score"] = j == 3 ? null() : integer(10 * j + i % 7);
  f["created_at"] = timestamp(kCreatedMicros + i * 1'000'000LL);
  f["updated_at"] = timestamp(kCreatedMicros + i * 1'000'000LL + j * 60'000'000LL);
  f["notes"] = j == 4 ? null() : text("call back \"v" + std::to_string(j) + "\", {soon}; a\\b, ünïcødé\nline 2");
  return f;
}

struct Version {
  int lead = 0;
  int index = 0;  // 0 = oldest
  int64_t source_version = 0;
  bool is_delete = false;
  Image image;  // the printed fields, for an upsert
  std::string event_id;
  std::string payload;
};

std::string lead_key(int i) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "d-%04d", i);
  return buf;
}

// Every version of every lead: 3 to 6 each. The newest version of every tenth lead is a delete,
// and another tenth is deleted in between and revived by a newer upsert.
std::vector<std::vector<Version>> make_versions(const std::string& source, const std::string& run_id, int64_t base) {
  std::vector<std::vector<Version>> leads(kKeys);
  for (int i = 0; i < kKeys; ++i) {
    const int n = 3 + i % 4;
    for (int j = 0; j < n; ++j) {
      Version v;
      v.lead = i;
      v.index = j;
      v.source_version = base + 1000LL * j;
      v.is_delete = (i % 10 == 3 && j == n - 1) || (i % 10 == 7 && j == 1);
      std::map<std::string, Value> fields;
      if (!v.is_delete) {
        fields = lead_fields(i, j);
        for (const auto& [name, value] : fields) v.image[name] = printed(value);
      }
      const auto event = change_event(source, "lead", lead_key(i),
                                      v.is_delete ? leadsync::v1::OP_DELETE : leadsync::v1::OP_UPSERT,
                                      v.source_version, fields, run_id);
      v.event_id = event.event_id();
      v.payload = event.SerializeAsString();
      leads[i].push_back(std::move(v));
    }
  }
  return leads;
}

struct StoredRow {
  Image image;
  int64_t version = 0;
  bool deleted = false;
  std::string source;
};

std::map<std::string, StoredRow> read_rows(pqxx::connection& conn, const common::Config& config) {
  pqxx::work tx(conn);
  const auto rows = tx.exec(
      "SELECT lead_id, first_name, last_name, email, phone, company, status, assignee, lead_sources::text, "
      "score::text, (extract(epoch FROM created_at) * 1000000)::bigint::text, "
      "(extract(epoch FROM updated_at) * 1000000)::bigint::text, notes, _version, _deleted, _source FROM " +
      common::qualified(conn, config.postgres.schema, "leads"));
  std::map<std::string, StoredRow> out;
  for (const auto& r : rows) {
    StoredRow row;
    for (std::size_t f = 0; f < kFields.size(); ++f) {
      const auto& cell = r[static_cast<int>(f) + 1];
      row.image[kFields[f]] = cell.is_null() ? std::nullopt : std::optional<std::string>(cell.as<std::string>());
    }
    row.version = r[13].as<int64_t>();
    row.deleted = r[14].as<bool>();
    row.source = r[15].is_null() ? "" : r[15].as<std::string>();
    out.emplace(r[0].as<std::string>(), std::move(row));
  }
  return out;
}

struct AuditRow {
  std::string field;
  std::optional<std::string> old_value, new_value;
  std::string event_id;
};

// A record's history: its creation, read from the row (_created_event, design.md §4), as a first
// entry '*', then its audit rows in the order they were written.
std::map<std::string, std::vector<AuditRow>> read_audit(pqxx::connection& conn, const common::Config& config,
                                                        const std::string& source) {
  pqxx::work tx(conn);
  std::map<std::string, std::vector<AuditRow>> out;
  const auto& e = config.entity("lead");
  for (const auto& r : tx.exec("SELECT " + conn.quote_name(e.key) + ", _created_event FROM " +
                               conn.quote_name(config.postgres.schema) + "." + conn.quote_name(e.table))) {
    out[r[0].as<std::string>()].push_back(
        {"*", std::nullopt, "created", r[1].is_null() ? std::string() : r[1].as<std::string>()});
  }
  // Timestamps are compared as epoch microseconds: the audit keeps them as the worker's session
  // printed them, with their zone offset, so the cast back is exact.
  const auto rows = tx.exec_params(
      "SELECT key, field, "
      "CASE WHEN field IN ('created_at', 'updated_at') "
      "  THEN (extract(epoch FROM old_value::timestamptz) * 1000000)::bigint::text ELSE old_value END, "
      "CASE WHEN field IN ('created_at', 'updated_at') "
      "  THEN (extract(epoch FROM new_value::timestamptz) * 1000000)::bigint::text ELSE new_value END, "
      "coalesce(event_id, '') FROM leadsync.field_changes WHERE entity = 'lead' AND source = $1 ORDER BY id",
      source);
  for (const auto& r : rows) {
    auto opt = [&](int c) { return r[c].is_null() ? std::nullopt : std::optional<std::string>(r[c].as<std::string>()); };
    out[r[0].as<std::string>()].push_back({r[1].as<std::string>(), opt(2), opt(3), r[4].as<std::string>()});
  }
  return out;
}

std::string show(const std::optional<std::string>& v) { return v ? "'" + *v + "'" : "NULL"; }

// Replays one record's audit trail against the versions that were produced: each group of rows
// must come from one of its events, newer than the one before, and name exactly the fields that
// this event changed, with the right old and new values. Returns the record as the trail leaves
// it, or a description of the first discrepancy.
std::variant<StoredRow, std::string> replay_audit(const std::vector<Version>& versions,
                                                  const std::vector<AuditRow>& rows) {
  std::map<std::string, const Version*> by_event;
  for (const auto& v : versions) by_event[v.event_id] = &v;
  StoredRow state;
  bool exists = false;
  for (std::size_t a = 0; a < rows.size();) {
    std::size_t b = a;
    while (b < rows.size() && rows[b].event_id == rows[a].event_id) ++b;
    const auto it = by_event.find(rows[a].event_id);
    if (it == by_event.end()) return "audit rows from unknown event '" + rows[a].event_id + "'";
    const Version& v = *it->second;
    if (exists && v.source_version <= state.version) {
      return "version " + std::to_string(v.index) + " audited after a version at least as new";
    }
    std::set<std::tuple<std::string, std::optional<std::string>, std::optional<std::string>>> got, want;
    for (std::size_t r = a; r < b; ++r) got.insert({rows[r].field, rows[r].old_value, rows[r].new_value});
    StoredRow next;
    next.version = v.source_version;
    next.deleted = v.is_delete;
    if (!exists) {
      want.insert({"*", std::nullopt, "created"});  // from the row, which names the creating event
      for (const auto& f : kFields) next.image[f] = v.is_delete ? std::nullopt : v.image.at(f);
    } else {
      next.image = v.is_delete ? state.image : v.image;  // a tombstone keeps the last values
      for (const auto& f : kFields) {
        if (state.image.at(f) != next.image.at(f)) want.insert({f, state.image.at(f), next.image.at(f)});
      }
      if (state.deleted != next.deleted) {
        want.insert({"_deleted", state.deleted ? "true" : "false", next.deleted ? "true" : "false"});
      }
    }
    if (got != want) {
      std::string d = "version " + std::to_string(v.index) + " audited as {";
      for (const auto& [f, o, n] : got) d += " " + f + ": " + show(o) + " -> " + show(n) + ";";
      d += " } but it changed {";
      for (const auto& [f, o, n] : want) d += " " + f + ": " + show(o) + " -> " + show(n) + ";";
      return d + " }";
    }
    state = std::move(next);
    exists = true;
    a = b;
  }
  if (!exists) return std::string("no audit row for its insert");
  return state;
}

int64_t stat(pqxx::connection& conn, const std::string& column, const std::string& run_id) {
  pqxx::work tx(conn);
  return tx.exec_params1("SELECT coalesce(sum(" + column + "), 0) FROM leadsync.run_apply_stats WHERE run_id = $1",
                         run_id)[0]
      .as<int64_t>();
}

// Everything that would show any write to the table: versions, flags and commit times.
std::string table_digest(pqxx::connection& conn, const common::Config& config) {
  pqxx::work tx(conn);
  return tx.exec1("SELECT md5(string_agg(t::text, '|' ORDER BY lead_id)) FROM " +
                  common::qualified(conn, config.postgres.schema, "leads") + " t")[0]
      .as<std::string>();
}

int64_t audit_rows(pqxx::connection& conn, const std::string& source) {
  pqxx::work tx(conn);
  return tx.exec_params1("SELECT count(*) FROM leadsync.field_changes WHERE source = $1", source)[0].as<int64_t>();
}

TEST(Delivery, R13_ShuffledAndDuplicatedDeliveryLeavesEveryKeyAtItsNewestVersion) {
  const auto tag = unique_tag("delivery");
  auto config = isolated_example_config(tag);
  // Small batches: most versions of a record meet in the database's version guard, in different
  // transactions, not only in the worker's in-batch collapse.
  config.worker.max_batch = 97;
  IsolatedEnvironment env(config);
  const auto& source = config.sources.at(0).name;
  const auto run_id = "run-" + tag;
  const auto replay_run_id = "replay-" + tag;

  const auto seed = std::random_device{}();
  SCOPED_TRACE("shuffle seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  const int64_t base = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch())
                           .count();
  const auto leads = make_versions(source, run_id, base);

  // Every version once, a quarter of them twice, all shuffled.
  std::vector<const Version*> delivery;
  for (const auto& versions : leads) {
    for (const auto& v : versions) delivery.push_back(&v);
  }
  const auto distinct = delivery.size();
  for (std::size_t i = 0; i < distinct; ++i) {
    if (rng() % 4 == 0) delivery.push_back(delivery[i]);
  }
  std::shuffle(delivery.begin(), delivery.end(), rng);

  WorkerThread worker(config);
  common::KafkaProducer kafka(config.kafka);
  auto conn = connect(config);
  for (const auto* v : delivery) kafka.produce(config.kafka.topic, "lead/" + lead_key(v->lead), v->payload);
  ASSERT_TRUE(kafka.flush(30s));
  ASSERT_EQ(kafka.failed(), 0u) << kafka.first_error();
  const auto produced = static_cast<int64_t>(delivery.size());
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, run_id) >= produced; }, 90s))
      << "accounted for " << accounted_events(*conn, run_id) << " of " << produced << " events";
  EXPECT_EQ(accounted_events(*conn, run_id), produced) << "events counted twice";

  const auto rows = read_rows(*conn, config);
  const auto audit = read_audit(*conn, config, source);
  EXPECT_EQ(rows.size(), static_cast<std::size_t>(kKeys)) << "extra or missing rows";
  EXPECT_EQ(audit.size(), static_cast<std::size_t>(kKeys)) << "audit rows for keys that were never produced";
  int problems = 0;
  auto problem = [&](const std::string& key, const std::string& what) {
    if (++problems <= 20) ADD_FAILURE() << key << ": " << what;
  };
  for (int i = 0; i < kKeys; ++i) {
    const auto key = lead_key(i);
    const auto& newest = leads[i].back();
    const auto row = rows.find(key);
    if (row == rows.end()) {
      problem(key, "missing");
      continue;
    }
    const auto& got = row->second;
    if (got.version != newest.source_version) problem(key, "_version is not the newest version's");
    if (got.deleted != newest.is_delete) problem(key, newest.is_delete ? "not deleted" : "deleted");
    if (got.source != source) problem(key, "_source is '" + got.source + "'");
    if (!newest.is_delete) {
      for (const auto& f : kFields) {
        if (got.image.at(f) != newest.image.at(f)) {
          problem(key, f + " is " + show(got.image.at(f)) + ", the newest version has " + show(newest.image.at(f)));
        }
      }
    }
    const auto trail = audit.find(key);
    const auto replayed = replay_audit(leads[i], trail == audit.end() ? std::vector<AuditRow>{} : trail->second);
    if (const auto* error = std::get_if<std::string>(&replayed)) {
      problem(key, "audit trail: " + *error);
    } else if (const auto& end = std::get<StoredRow>(replayed); end.image != got.image || end.deleted != got.deleted) {
      problem(key, "the audit trail does not lead to the stored record");
    }
  }
  EXPECT_EQ(problems, 0);

  // Older versions and the newest once more, after the newest is committed: the version guard
  // must turn every one of them into a no-op.
  const auto digest = table_digest(*conn, config);
  const auto audited = audit_rows(*conn, source);
  common::KafkaProducer replay(config.kafka);
  int64_t replayed = 0;
  for (int i = 0; i < kKeys; i += 3) {
    const auto& versions = leads[i];
    for (int k = 0; k < 2; ++k) {
      const auto& v = versions[rng() % versions.size()];
      auto event = change_event(source, "lead", lead_key(i),
                                v.is_delete ? leadsync::v1::OP_DELETE : leadsync::v1::OP_UPSERT, v.source_version,
                                v.is_delete ? std::map<std::string, Value>{} : lead_fields(i, v.index), replay_run_id);
      ASSERT_EQ(event.event_id(), v.event_id);
      produce_event(replay, config.kafka, event);
      ++replayed;
    }
  }
  ASSERT_TRUE(replay.flush(30s));
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, replay_run_id) >= replayed; }, 60s))
      << "accounted for " << accounted_events(*conn, replay_run_id) << " of " << replayed << " replayed events";
  EXPECT_EQ(stat(*conn, "stale", replay_run_id), replayed);
  EXPECT_EQ(table_digest(*conn, config), digest) << "a replayed version changed the table";
  EXPECT_EQ(audit_rows(*conn, source), audited) << "a replayed version wrote audit rows";

  EXPECT_EQ(sum(high_watermarks(config.kafka, config.kafka.dlq_topic)), 0) << "events were dead-lettered";
  for (int tier = 1; tier <= config.kafka.retry.attempts; ++tier) {
    EXPECT_EQ(sum(high_watermarks(config.kafka, config.kafka.retry_topic(tier))), 0) << "retry tier " << tier;
  }
}

}  // namespace
}  // namespace leadsync::testing
