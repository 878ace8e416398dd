// R5, R13 — failures on the way into PostgreSQL: records that can never apply go to the dead-letter
// topic with their reason and do not hold up their partition; records that fail for a while climb
// the retry tiers with growing backoff and are applied (or dead-lettered once the tiers are spent);
// a database outage is waited out without touching the retry tiers, and nothing is lost.
//
// The outage test stops the shared PostgreSQL: run this binary alone, under the exclusive cluster
// lock (flock -x /tmp/leadsync-cluster.lock build/tests/failure_tests); CTest runs it serially.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::Value;

// ------------------------------------------------------------------ lead events

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A full image of every field of the example `lead` entity; `notes` and `score` tell versions apart.
std::map<std::string, Value> lead_fields(const std::string& key, const std::string& notes, int64_t score) {
  return {
      {"first_name", text("Ada " + key)},
      {"last_name", text("Lovelace")},
      {"email", text(key + "@example.com")},
      {"phone", text("+44 20 7946 0000")},
      {"company", text("Analytical Engines")},
      {"status", text("new")},
      {"assignee", text("ana")},
      {"lead_sources", list({"web"})},
      {"score", integer(score)},
      {"created_at", timestamp(1'767'225'600'000'000)},
      {"updated_at", null()},
      {"notes", text(notes)},
  };
}

common::ChangeEvent lead_event(const common::Config& config, const std::string& key, int64_t version,
                               std::map<std::string, Value> fields, const std::string& run_id) {
  return change_event(config.sources.at(0).name, "lead", key, leadsync::v1::OP_UPSERT, version, fields, run_id);
}

std::string key_name(const char* prefix, int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%s-%05d", prefix, i);
  return buf;
}

int64_t count(pqxx::connection& conn, const std::string& sql, const std::string& param = "") {
  pqxx::work tx(conn);
  return param.empty() ? tx.exec1(sql)[0].as<int64_t>() : tx.exec_params1(sql, param)[0].as<int64_t>();
}

int64_t stat(pqxx::connection& conn, const std::string& column, const std::string& run_id) {
  return count(conn, "SELECT coalesce(sum(" + column + "), 0) FROM leadsync.run_apply_stats WHERE run_id = $1", run_id);
}

struct StoredLead {
  std::string email, notes;
  int64_t score = 0, version = 0, synced_at_ms = 0;
};

std::map<std::string, StoredLead> read_leads(pqxx::connection& conn, const common::Config& config) {
  pqxx::work tx(conn);
  const auto rows = tx.exec("SELECT lead_id, email, notes, score, _version, "
                            "floor(extract(epoch FROM _synced_at) * 1000)::bigint FROM " +
                            common::qualified(conn, config.postgres.schema, "leads"));
  std::map<std::string, StoredLead> out;
  for (const auto& r : rows) {
    out[r[0].as<std::string>()] = {r[1].as<std::string>(""), r[2].as<std::string>(""), r[3].as<int64_t>(-1),
                                   r[4].as<int64_t>(), r[5].as<int64_t>()};
  }
  return out;
}

int64_t header_int(const TopicRecord& r, const std::string& name) {
  const auto v = r.header(name);
  try {
    return v.empty() ? -1 : std::stoll(v);
  } catch (const std::exception&) {
    return -1;
  }
}

int64_t written(const common::Config& config, const std::string& topic) {
  return sum(high_watermarks(config.kafka, topic));
}

// ------------------------------------------------------------------ (a) poison

struct Poison {
  std::string kind;
  std::string key;       // the Kafka key: that of a good event produced after it
  std::string payload;
  std::string field;     // the field the dead letter must name, "" when none applies
};

TEST(Failure, R5_PoisonRecordsGoToTheDeadLetterTopicWithTheirReasonWhileThePartitionKeepsMoving) {
  const auto tag = unique_tag("poison");
  const auto config = isolated_example_config(tag);
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag;
  constexpr int kGood = 10'000;
  const int64_t version = now_micros();

  // Each poison record carries the key of a good event that follows it, so the good event lands in
  // the same partition after it. The mappable-looking ones also carry a newer version: applied by
  // mistake, they would make their good event stale and show in the table.
  std::vector<Poison> poison;
  for (int copy = 0; copy < 3; ++copy) {
    auto key = [&](int kind) { return key_name("p", kGood / 2 + (copy * 7 + kind) * 211); };
    const auto good_bytes = lead_event(config, key(1), version, lead_fields(key(1), "x", 1), run_id).SerializeAsString();
    poison.push_back({"overlong varint", key(0), std::string(10, '\xff') + "\x01", ""});
    poison.push_back({"truncated event", key(1), good_bytes.substr(0, 10), ""});
    poison.push_back({"json", key(2), R"({"lead_id": "p-1", "email": "a@example.com"})", ""});
    auto bad = [&](int kind, const std::string& kind_name, const std::string& field, auto&& edit) {
      auto fields = lead_fields(key(kind), "poison", 999);
      edit(fields);
      poison.push_back(
          {kind_name, key(kind), lead_event(config, key(kind), version + 1, fields, run_id).SerializeAsString(), field});
    };
    bad(3, "string in an int field", "score", [](auto& f) { f["score"] = text("high"); });
    bad(4, "field not in the entity", "favourite_colour", [](auto& f) { f["favourite_colour"] = text("teal"); });
    bad(5, "full event missing a field", "phone", [](auto& f) { f.erase("phone"); });
    bad(6, "NULL in a required field", "email", [](auto& f) { f["email"] = null(); });
  }
  for (const auto& p : poison) {
    // The malformed ones really are not a ChangeEvent; the others are one, only not a valid lead.
    ASSERT_EQ(common::ChangeEvent().ParseFromString(p.payload), !p.field.empty()) << p.kind;
  }
  const auto unmappable = std::count_if(poison.begin(), poison.end(), [](const Poison& p) { return !p.field.empty(); });

  WorkerThread worker(config);
  common::KafkaProducer kafka(config.kafka);
  auto produce_good = [&](int from, int to) {
    for (int i = from; i < to; ++i) {
      const auto key = key_name("p", i);
      produce_event(kafka, config.kafka, lead_event(config, key, version, lead_fields(key, "good", i), run_id));
    }
  };
  produce_good(0, kGood / 2);
  for (const auto& p : poison) kafka.produce(config.kafka.topic, "lead/" + p.key, p.payload);
  produce_good(kGood / 2, kGood);
  ASSERT_TRUE(kafka.flush(60s));
  ASSERT_EQ(kafka.failed(), 0u) << kafka.first_error();

  auto conn = connect(config);
  const auto expected = static_cast<int64_t>(kGood + unmappable);
  ASSERT_TRUE(eventually(
      [&] {
        return accounted_events(*conn, run_id) >= expected &&
               written(config, config.kafka.dlq_topic) >= static_cast<int64_t>(poison.size());
      },
      90s))
      << "accounted for " << accounted_events(*conn, run_id) << " of " << expected << " events; "
      << written(config, config.kafka.dlq_topic) << " of " << poison.size() << " dead letters";

  // Every good event is applied, and only good events.
  const auto leads = read_leads(*conn, config);
  EXPECT_EQ(leads.size(), static_cast<std::size_t>(kGood));
  int wrong = 0;
  for (int i = 0; i < kGood; ++i) {
    const auto key = key_name("p", i);
    const auto it = leads.find(key);
    const bool ok = it != leads.end() && it->second.version == version && it->second.notes == "good" &&
                    it->second.score == i && it->second.email == key + "@example.com";
    if (!ok && ++wrong <= 10) ADD_FAILURE() << key << " is missing or not its good event";
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(stat(*conn, "inserted", run_id), kGood);
  EXPECT_EQ(stat(*conn, "failed", run_id), unmappable);

  // Every poison record is in the dead-letter topic once, unchanged, with its context.
  const auto main = read_topic(config.kafka, config.kafka.topic);
  ASSERT_EQ(main.size(), static_cast<std::size_t>(kGood) + poison.size());
  std::map<std::pair<int32_t, int64_t>, const TopicRecord*> at;
  for (const auto& m : main) at[{m.partition, m.offset}] = &m;
  const auto dead = read_topic(config.kafka, config.kafka.dlq_topic);
  EXPECT_EQ(dead.size(), poison.size());
  std::multiset<std::string> seen;
  for (const auto& d : dead) {
    const auto p = std::find_if(poison.begin(), poison.end(),
                                [&](const Poison& p) { return "lead/" + p.key == d.key && p.payload == d.value; });
    if (p == poison.end()) {
      ADD_FAILURE() << "dead letter " << d.key << " is none of the poison records";
      continue;
    }
    SCOPED_TRACE(p->kind + " with key " + p->key);
    seen.insert(p->kind + p->key);
    EXPECT_EQ(d.header("leadsync-error-class"), "permanent");
    EXPECT_EQ(d.header("leadsync-attempt"), "1");
    EXPECT_FALSE(d.header("leadsync-error").empty());
    if (p->field.empty()) {
      EXPECT_EQ(d.headers.count("leadsync-error-field"), 0u);
    } else {
      EXPECT_EQ(d.header("leadsync-error-field"), p->field);
      EXPECT_NE(d.header("leadsync-error").find(p->field), std::string::npos)
          << "the reason does not name the field: " << d.header("leadsync-error");
    }
    // The original coordinates point at the poison record itself ...
    EXPECT_EQ(d.header("leadsync-original-topic"), config.kafka.topic);
    const auto partition = static_cast<int32_t>(header_int(d, "leadsync-original-partition"));
    const auto offset = header_int(d, "leadsync-original-offset");
    const auto original = at.find({partition, offset});
    ASSERT_NE(original, at.end()) << "no message at " << partition << "@" << offset;
    EXPECT_EQ(original->second->value, p->payload);
    // ... and its partition moved on: the good event behind it, later in the same partition, is applied.
    const auto follower = std::find_if(original, at.end(), [&](const auto& m) {
      return m.first.first == partition && m.first.second > offset && m.second->key == "lead/" + p->key &&
             m.second->value != p->payload;
    });
    ASSERT_NE(follower, at.end()) << "no good event after the poison record in partition " << partition;
    EXPECT_EQ(leads.count(p->key), 1u);
  }
  EXPECT_EQ(seen.size(), poison.size());
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), poison.size()) << "a poison record twice";

  for (int tier = 1; tier <= config.kafka.retry.attempts; ++tier) {
    EXPECT_EQ(written(config, config.kafka.retry_topic(tier)), 0) << "a permanent failure was retried in tier " << tier;
  }
  EXPECT_EQ(metric_value(worker.telemetry(), "leadsync_events_dead_lettered_total", {{"error_class", "permanent"}}),
            static_cast<double>(poison.size()));
}

// ------------------------------------------------------------------ (b) transient

// Makes writes of chosen leads fail with serialization_failure (SQLSTATE 40001) until a time kept
// in a side table. The trigger cannot count attempts: its own writes roll back with the error, and
// the worker's batch splitting fires it several times per attempt.
void install_failure_trigger(pqxx::connection& conn, const common::Config& config) {
  const auto schema = conn.quote_name(config.postgres.schema);
  pqxx::work tx(conn);
  tx.exec("CREATE TABLE " + schema + ".fail_until (lead_id text PRIMARY KEY, until timestamptz NOT NULL)");
  tx.exec("CREATE FUNCTION " + schema + ".fail_chosen() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
          "IF EXISTS (SELECT 1 FROM " + schema + ".fail_until f "
          "           WHERE f.lead_id = NEW.lead_id AND clock_timestamp() < f.until) THEN "
          "  RAISE EXCEPTION 'simulated serialization failure for %', NEW.lead_id "
          "    USING ERRCODE = 'serialization_failure'; "
          "END IF; RETURN NEW; END $$");
  tx.exec("CREATE TRIGGER fail_chosen BEFORE INSERT OR UPDATE ON " +
          common::qualified(conn, config.postgres.schema, "leads") + " FOR EACH ROW EXECUTE FUNCTION " + schema +
          ".fail_chosen()");
  tx.commit();
}

void fail_until(pqxx::connection& conn, const common::Config& config, const std::string& key, const std::string& until) {
  pqxx::work tx(conn);
  tx.exec_params("INSERT INTO " + common::qualified(conn, config.postgres.schema, "fail_until") +
                     " VALUES ($1, $2::timestamptz) ON CONFLICT (lead_id) DO UPDATE SET until = EXCLUDED.until",
                 key, until);
  tx.commit();
}

// Waits until `tail` shows a message with `key`; returns it.
std::optional<TopicRecord> wait_for_key(TopicTail& tail, const std::string& key, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto r = tail.next(50ms);
    if (r && r->key == key) return r;
  }
  return std::nullopt;
}

TEST(Failure, R5_TransientFailuresClimbTheRetryTiersWithGrowingBackoffUntilAppliedOrDeadLettered) {
  const auto tag = unique_tag("transient");
  auto config = isolated_example_config(tag);
  // Tier 1 waits a full second: the test must see flaky-early arrive there and clear its failure
  // before the worker retries it, also on a loaded CI machine.
  config.kafka.retry = {4, 1000, 3000};
  // What the configuration promises, written out: base·2^(n-1), capped at max.
  const std::vector<int64_t> backoff_ms = {1000, 2000, 3000, 3000};
  IsolatedEnvironment env(config);
  auto conn = connect(config);
  install_failure_trigger(*conn, config);
  const auto run_id = "run-" + tag;
  const std::string early = "flaky-early", late = "flaky-late", doomed = "doomed";
  for (const auto& k : {early, late, doomed}) fail_until(*conn, config, k, "infinity");

  TopicTail first_tier(config.kafka, config.kafka.retry_topic(1));
  TopicTail last_tier(config.kafka, config.kafka.retry_topic(4));
  WorkerThread worker(config);
  common::KafkaProducer kafka(config.kafka);
  constexpr int kGood = 200;
  const int64_t version = now_micros();
  auto produce = [&](const std::string& key) {
    produce_event(kafka, config.kafka, lead_event(config, key, version, lead_fields(key, "v", 7), run_id));
  };
  for (int i = 0; i < kGood / 2; ++i) produce(key_name("t", i));
  for (const auto& k : {early, late, doomed}) produce(k);
  for (int i = kGood / 2; i < kGood; ++i) produce(key_name("t", i));
  ASSERT_TRUE(kafka.flush(30s));

  // flaky-early recovers once it waits in tier 1, flaky-late once it waits in the last tier.
  ASSERT_TRUE(wait_for_key(first_tier, "lead/" + early, 30s)) << early << " never reached tier 1";
  fail_until(*conn, config, early, "-infinity");
  ASSERT_TRUE(wait_for_key(last_tier, "lead/" + late, 30s)) << late << " never reached tier 4";
  fail_until(*conn, config, late, "-infinity");

  const int64_t events = kGood + 3;
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, run_id) >= events; }, 60s))
      << "accounted for " << accounted_events(*conn, run_id) << " of " << events << " events";
  EXPECT_EQ(accounted_events(*conn, run_id), events);
  EXPECT_EQ(stat(*conn, "failed", run_id), 1);

  // What each tier and the dead-letter topic received, by key.
  std::vector<std::map<std::string, TopicRecord>> tier(6);  // [1..4] tiers, [5] dead letters
  for (int n = 1; n <= 5; ++n) {
    const auto topic = n <= 4 ? config.kafka.retry_topic(n) : config.kafka.dlq_topic;
    for (auto& r : read_topic(config.kafka, topic)) {
      const auto key = r.key;
      EXPECT_TRUE(tier[static_cast<std::size_t>(n)].emplace(key, std::move(r)).second) << key << " twice in " << topic;
    }
  }
  auto keys = [&](int n) {
    std::set<std::string> out;
    for (const auto& [k, r] : tier[static_cast<std::size_t>(n)]) out.insert(k);
    return out;
  };
  const std::set<std::string> all_three = {"lead/" + early, "lead/" + late, "lead/" + doomed};
  const std::set<std::string> late_two = {"lead/" + late, "lead/" + doomed};
  ASSERT_EQ(keys(1), all_three);
  for (int n = 2; n <= 4; ++n) ASSERT_EQ(keys(n), late_two) << "tier " << n;
  ASSERT_EQ(keys(5), std::set<std::string>{"lead/" + doomed}) << "dead letters";

  const auto main = read_topic(config.kafka, config.kafka.topic);
  for (const auto& key : {late, doomed}) {
    SCOPED_TRACE(key);
    const auto original = std::find_if(main.begin(), main.end(), [&](const auto& m) { return m.key == "lead/" + key; });
    ASSERT_NE(original, main.end());
    const int last = key == doomed ? 5 : 4;
    for (int n = 1; n <= last; ++n) {
      SCOPED_TRACE(n <= 4 ? "tier " + std::to_string(n) : std::string("dead letter"));
      const auto& r = tier[static_cast<std::size_t>(n)].at("lead/" + key);
      EXPECT_EQ(r.value, original->value) << "the payload changed on its way";
      EXPECT_EQ(header_int(r, "leadsync-attempt"), n);
      EXPECT_EQ(r.header("leadsync-error-class"), "retryable");
      EXPECT_NE(r.header("leadsync-error").find("simulated serialization failure"), std::string::npos)
          << r.header("leadsync-error");
      EXPECT_EQ(r.header("leadsync-original-topic"), config.kafka.topic);
      EXPECT_EQ(header_int(r, "leadsync-original-partition"), original->partition);
      EXPECT_EQ(header_int(r, "leadsync-original-offset"), original->offset);
      if (n > 1) {
        // Attempt n failed at leadsync-failed-at-ms of the record it produced; the attempt before
        // it waited in tier n-1 for at least that tier's backoff.
        const auto& before = tier[static_cast<std::size_t>(n - 1)].at("lead/" + key);
        const auto waited = header_int(r, "leadsync-failed-at-ms") - header_int(before, "leadsync-failed-at-ms");
        EXPECT_GE(waited, backoff_ms[static_cast<std::size_t>(n - 2)]) << "attempt " << n << " came too early";
      }
    }
  }

  // The recovered keys are applied, not before their last tier's due time; the doomed one is not.
  const auto leads = read_leads(*conn, config);
  EXPECT_EQ(leads.size(), static_cast<std::size_t>(kGood + 2));
  for (int i = 0; i < kGood; ++i) EXPECT_EQ(leads.count(key_name("t", i)), 1u) << key_name("t", i);
  for (const auto& [key, n] : {std::pair{early, 1}, std::pair{late, 4}}) {
    const auto it = leads.find(key);
    ASSERT_NE(it, leads.end()) << key << " was never applied";
    EXPECT_EQ(it->second.version, version);
    EXPECT_GE(it->second.synced_at_ms, header_int(tier[static_cast<std::size_t>(n)].at("lead/" + key),
                                                  "leadsync-not-before-ms"))
        << key << " was applied before its tier " << n << " was due";
  }
  EXPECT_EQ(leads.count(doomed), 0u);

  auto& telemetry = worker.telemetry();
  EXPECT_EQ(metric_value(telemetry, "leadsync_events_retried_total", {{"tier", "1"}}), 3);
  for (int n = 2; n <= 4; ++n) {
    EXPECT_EQ(metric_value(telemetry, "leadsync_events_retried_total", {{"tier", std::to_string(n)}}), 2);
  }
  EXPECT_EQ(metric_value(telemetry, "leadsync_events_dead_lettered_total", {{"error_class", "retryable"}}), 1);
}

// ------------------------------------------------------------------ (c) outage

// The local cluster's PostgreSQL (.local/env), stopped and started with pg_ctl as its OS user.
// Destruction starts it again if it is down, so a failing test never leaves it stopped.
class LocalPostgres {
 public:
  LocalPostgres() {
    for (const auto* name : {"LEADSYNC_PG_BIN", "LEADSYNC_PG_DATA", "LEADSYNC_PG_OS_USER"}) {
      if (!std::getenv(name)) throw std::runtime_error(std::string(name) + " is not set (source .local/env)");
    }
    const std::string bin = std::getenv("LEADSYNC_PG_BIN"), data = std::getenv("LEADSYNC_PG_DATA");
    const std::string user = std::getenv("LEADSYNC_PG_OS_USER");
    pg_ctl_ = (::geteuid() == 0 ? "runuser -u '" + user + "' -- " : std::string()) + "'" + bin + "/pg_ctl' -D '" +
              data + "'";
    // Where dev/cluster sends the server log; without -l the server would keep the test's stdout.
    server_log_ = data + "/../postgres.log";
    output_ = "/tmp/leadsync-pg-ctl-" + std::to_string(::getpid()) + ".log";
  }
  ~LocalPostgres() {
    if (!stopped_) return;
    try {
      start();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "PostgreSQL could not be restarted: %s\n", e.what());
    }
  }
  LocalPostgres(const LocalPostgres&) = delete;
  LocalPostgres& operator=(const LocalPostgres&) = delete;

  void stop() {
    stopped_ = true;
    run("stop -m fast -w -t 60");
  }
  void start() {
    run("start -w -t 60 -l '" + server_log_ + "'");
    stopped_ = false;
  }

 private:
  void run(const std::string& args) {
    const auto command = pg_ctl_ + " " + args + " >'" + output_ + "' 2>&1 </dev/null";
    if (std::system(command.c_str()) != 0) {
      std::ifstream in(output_);
      std::stringstream out;
      out << in.rdbuf();
      throw std::runtime_error("'" + command + "' failed: " + out.str());
    }
  }

  std::string pg_ctl_, server_log_, output_;
  bool stopped_ = false;
};

TEST(Failure, R13_PostgresOutageInTheMiddleOfASyncIsWaitedOutWithoutRetryingRecordsAndLosesNothing) {
  const auto tag = unique_tag("outage");
  auto config = isolated_example_config(tag);
  config.kafka.retry = {3, 300, 1200};
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag;
  constexpr int kKeys = 40'000, kUpdates = 10'000, kEvents = kKeys + kUpdates;
  const int64_t version = now_micros();
  // Event n < kKeys inserts key n; the rest update keys 0..kUpdates-1 to a second version.
  auto event = [&](int n) {
    const int i = n < kKeys ? n : n - kKeys;
    const auto key = key_name("o", i);
    return n < kKeys ? lead_event(config, key, version, lead_fields(key, "first", i % 100), run_id)
                     : lead_event(config, key, version + 1, lead_fields(key, "second", i % 100 + 1), run_id);
  };

  LocalPostgres postgres;
  WorkerThread worker(config);
  auto conn = connect(config);
  const auto table = common::qualified(*conn, config.postgres.schema, "leads");

  // The source publishes at a steady pace: the first half while the database goes away, so that
  // batches are in flight when it does, the second half once it is down.
  std::atomic<bool> down{false};
  std::string producer_error;
  std::thread producer([&] {
    try {
      common::KafkaProducer kafka(config.kafka);
      for (int n = 0; n < kEvents; ++n) {
        if (n == kEvents / 2) {
          while (!down.load()) std::this_thread::sleep_for(10ms);
        }
        produce_event(kafka, config.kafka, event(n));
        if (n % 1000 == 999) std::this_thread::sleep_for(40ms);
      }
      if (!kafka.flush(60s) || kafka.failed() != 0) producer_error = "not acknowledged: " + kafka.first_error();
    } catch (const std::exception& e) {
      producer_error = e.what();
    }
  });
  // Lets the producer finish (and the thread be joined) on every way out of the test.
  struct Finish {
    std::atomic<bool>& down;
    std::thread& producer;
    ~Finish() {
      down.store(true);
      if (producer.joinable()) producer.join();
    }
  } finish{down, producer};

  ASSERT_TRUE(eventually([&] { return count(*conn, "SELECT count(*) FROM " + table) >= 5'000; }, 60s));
  conn.reset();
  postgres.stop();
  const auto stopped_at = std::chrono::steady_clock::now();
  down.store(true);
  EXPECT_TRUE(eventually([&] { return metric_value(worker.telemetry(), "leadsync_database_up") == 0; }, 9s))
      << "the worker did not notice the outage";
  EXPECT_TRUE(eventually([&] { return !worker.telemetry().ready(); }, 2s))
      << "the worker reports ready without a database";
  producer.join();
  EXPECT_EQ(producer_error, "");
  std::this_thread::sleep_until(stopped_at + 10s);
  postgres.start();

  conn = connect(config);
  const auto complete = [&] {
    return count(*conn, "SELECT count(*) FROM " + table) == kKeys &&
           count(*conn, "SELECT count(*) FROM " + table + " WHERE _version = " + std::to_string(version + 1)) ==
               kUpdates &&
           accounted_events(*conn, run_id) >= kEvents;
  };
  ASSERT_TRUE(eventually(complete, 180s))
      << count(*conn, "SELECT count(*) FROM " + table) << " rows, accounted for "
      << accounted_events(*conn, run_id) << " of " << kEvents << " events";
  EXPECT_TRUE(eventually([&] { return metric_value(worker.telemetry(), "leadsync_database_up") == 1; }, 5s));

  // Exactly the newest version of every key, every field.
  const auto leads = read_leads(*conn, config);
  ASSERT_EQ(leads.size(), static_cast<std::size_t>(kKeys));
  int wrong = 0;
  for (int i = 0; i < kKeys; ++i) {
    const auto key = key_name("o", i);
    const bool updated = i < kUpdates;
    const auto it = leads.find(key);
    const bool ok = it != leads.end() && it->second.version == version + (updated ? 1 : 0) &&
                    it->second.notes == (updated ? "second" : "first") &&
                    it->second.score == i % 100 + (updated ? 1 : 0) && it->second.email == key + "@example.com";
    if (!ok && ++wrong <= 10) ADD_FAILURE() << key << " is missing or not at its newest version";
  }
  EXPECT_EQ(wrong, 0);
  // Exactly one insert per key and no duplicated audit from a replayed batch: every row records its
  // creation (by this source's event), no creation is audited, and a key has audit rows for notes
  // and score only when its update applied on top of the insert.
  const auto& source = config.sources.at(0).name;
  const auto& lead = config.entity("lead");
  EXPECT_EQ(count(*conn,
                  "SELECT count(*) FROM " + conn->quote_name(config.postgres.schema) + "." +
                      conn->quote_name(lead.table) + " WHERE _source = $1 AND _created_event IS NOT NULL AND "
                      "_created_version IS NOT NULL",
                  source),
            kKeys);
  EXPECT_EQ(count(*conn, "SELECT count(*) FROM leadsync.field_changes WHERE source = $1 AND field = '*'", source), 0);
  EXPECT_EQ(count(*conn,
                  "SELECT count(*) FROM (SELECT key, count(*) AS n, bool_and(field IN ('notes', 'score')) AS ok "
                  "FROM leadsync.field_changes WHERE source = $1 GROUP BY key) k "
                  "WHERE NOT ok OR n <> 2 OR key >= '" + key_name("o", kUpdates) + "'",
                  source),
            0);
  EXPECT_EQ(stat(*conn, "inserted", run_id), kKeys);
  EXPECT_LE(stat(*conn, "updated", run_id), kUpdates);
  EXPECT_EQ(stat(*conn, "failed", run_id), 0);

  // Nothing was sent to the retry tiers or the dead-letter topic.
  for (int tier = 1; tier <= config.kafka.retry.attempts; ++tier) {
    EXPECT_EQ(written(config, config.kafka.retry_topic(tier)), 0) << "records were retried in tier " << tier;
  }
  EXPECT_EQ(written(config, config.kafka.dlq_topic), 0) << "records were dead-lettered";
}

}  // namespace
}  // namespace leadsync::testing
