// kind: firestore end to end: documents in the real Firestore emulator, synced through the real
// broker by the worker into the real PostgreSQL.
//  - The seed-000 scenario (R1, R2): an admin UI keeps agents in Firestore with `leadSources`
//    arrays; PostgreSQL already holds the same agent under another Firebase UID; after one sync the
//    agent's row has `aimedici`, linked by normalised e-mail, with no duplicate, and verify passes.
//    Agents whose leadSources is a string or null end as the coerce rule says, or as row errors.
//  - 20,000 documents (R9): 1% updated and 0.5% deleted publish exactly those events; an unchanged
//    re-run publishes nothing.
#include <gtest/gtest.h>

#include <set>

#include "common/kafka_producer.h"
#include "common/schema.h"
#include "ctl/verify.h"
#include "producers/sync_run.h"
#include "tests/integration/cluster.h"
#include "tests/integration/firestore_support.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;
using Keys = std::set<std::string>;

struct Published {
  producers::RunReport report;
  int64_t messages = 0;
  Keys upserts, deletes;
};

class FirestoreSync : public ::testing::Test {
 protected:
  // `identity`: the agent entity links by normalised e-mail (R1) and audits; the bulk test does
  // without both, which it does not test and which only slow the apply of 20,000 new agents.
  enum class Identity { kMatchOnEmail, kKeyOnly };
  explicit FirestoreSync(common::ListCoerce coerce = common::ListCoerce::kWrapScalar,
                         Identity identity = Identity::kMatchOnEmail)
      : tag_(unique_tag("fs")),
        fs_(project_id(tag_)),
        config_(make_config(tag_, fs_, coerce, identity)),
        env_(config_),
        worker_(config_),
        kafka_(config_.kafka),
        runner_(config_, kafka_, nullptr),
        conn_(connect(config_)) {}

  void SetUp() override {
    ASSERT_TRUE(fs_.available()) << "FIRESTORE_EMULATOR_HOST is not set: start the local cluster (dev/cluster up)";
    // The topics were just created: wait until the broker's metadata knows every partition.
    ASSERT_TRUE(eventually(
        [&] {
          try {
            high_watermarks(config_.kafka, config_.kafka.topic);
            return true;
          } catch (const std::exception&) {
            return false;
          }
        },
        30s));
  }

  // The example config plus an `agent` entity matched by normalised e-mail (R1), read from the
  // emulator's `agents` collection of this test's own project.
  static common::Config make_config(const std::string& tag, const FirestoreEmulator& fs, common::ListCoerce coerce,
                                    Identity identity) {
    auto config = isolated_example_config(tag);
    common::EntityConfig agent;
    agent.name = "agent";
    agent.table = "agents";
    agent.key = "agent_id";
    if (identity == Identity::kMatchOnEmail) agent.match_on = {"email"};
    agent.audit = identity == Identity::kMatchOnEmail;
    auto field = [](std::string name, common::FieldType type, common::Normalize normalize = common::Normalize::kNone) {
      common::FieldConfig f;
      f.name = std::move(name);
      f.type = type;
      f.normalize = normalize;
      return f;
    };
    agent.fields = {field("email", common::FieldType::kText, common::Normalize::kLowerTrim),
                    field("display_name", common::FieldType::kText, common::Normalize::kTrim),
                    field("lead_sources", common::FieldType::kTextList, common::Normalize::kLowerTrim),
                    field("city", common::FieldType::kText), field("address", common::FieldType::kJson),
                    field("updated_at", common::FieldType::kTimestamp)};
    agent.fields[0].required = true;
    agent.fields[2].coerce = coerce;
    config.entities.emplace("agent", agent);
    config.sources = {fs.source("admin-ui-" + tag, "agent", "agents",
                                {{"__name__", "agent_id"},
                                 {"email", "email"},
                                 {"displayName", "display_name"},
                                 {"leadSources", "lead_sources"},
                                 {"address.city", "city"},
                                 {"address", "address"},
                                 {"updatedAt", "updated_at"}})};
    return config;
  }

  const common::SourceConfig& source() const { return config_.sources.at(0); }

  // Runs the source once, reads back from the main topic what it published, and waits until the
  // worker has accounted for every event.
  void sync(Published& out) { sync(out, source()); }
  void sync(Published& out, const common::SourceConfig& s) {
    const auto before = high_watermarks(config_.kafka, config_.kafka.topic);
    out.report = runner_.run(s);
    ASSERT_EQ(out.report.status, common::RunStatus::kCompleted) << out.report.message;
    const auto after = high_watermarks(config_.kafka, config_.kafka.topic);
    out.messages = sum(after) - sum(before);
    for (const auto& m : read_messages(config_.kafka, config_.kafka.topic, before, after)) {
      common::ChangeEvent e;
      ASSERT_TRUE(e.ParseFromString(m.value));
      (e.op() == leadsync::v1::OP_DELETE ? out.deletes : out.upserts).insert(e.key());
    }
    const auto published = static_cast<int64_t>(out.report.events_published);
    ASSERT_TRUE(eventually([&] { return accounted_events(*conn_, out.report.run_id) >= published; }, 300s))
        << "the worker accounted for " << accounted_events(*conn_, out.report.run_id) << " of " << published;
  }

  pqxx::result query(const std::string& sql_after_from, const std::string& columns) {
    pqxx::work tx(*conn_);
    return tx.exec("SELECT " + columns + " FROM " + common::qualified(*conn_, config_.postgres.schema, "agents") +
                   " " + sql_after_from);
  }

  std::vector<std::string> lead_sources_of(const std::string& key) {
    pqxx::work tx(*conn_);
    const auto r = tx.exec_params(
        "SELECT coalesce(array_to_string(lead_sources, '|'), '<null>') FROM " +
            common::qualified(*conn_, config_.postgres.schema, "agents") + " WHERE agent_id = $1",
        key);
    if (r.empty()) return {"<no row>"};
    const auto text = r[0][0].as<std::string>();
    std::vector<std::string> out;
    for (std::size_t at = 0; !text.empty() && at <= text.size();) {
      const auto end = std::min(text.find('|', at), text.size());
      out.push_back(text.substr(at, end - at));
      at = end + 1;
    }
    return out;
  }

  // PostgreSQL's agent, synced before from another system under its own id (the 000 mismatch).
  void seed_postgres_agent(const std::string& key, const std::string& email) {
    std::map<std::string, common::Value> fields;
    for (const auto& f : config_.entity("agent").fields) fields[f.name] = null();
    fields["email"] = text(email);
    fields["lead_sources"] = list({});
    const auto event = change_event("backend-" + tag_, "agent", key, leadsync::v1::OP_UPSERT, 100, fields,
                                    "seed-" + tag_);
    produce_event(kafka_, config_.kafka, event);
    ASSERT_TRUE(kafka_.flush(10s));
    ASSERT_TRUE(eventually([&] { return accounted_events(*conn_, "seed-" + tag_) >= 1; }, 60s));
  }

  // The seed-000 documents: the mismatched agent, one whose leadSources is a string, one with null.
  void write_seed_000_agents() {
    fs_.set({{"agents/" + uid("Xk29"),
              {{"email", fs_string("  AgentEdos@CreditPlan.it ")},
               {"displayName", fs_string("Edoardo")},
               {"leadSources", fs_strings({"aimedici"})},
               {"address", fs_map({{"city", fs_string("Milano")}, {"zip", {{"integerValue", "20121"}}}})},
               {"updatedAt", fs_timestamp("2026-03-01T10:00:00.123456789Z")}}},
             {"agents/" + uid("Str"),
              {{"email", fs_string("string@creditplan.it")},
               {"leadSources", fs_string("Facebook")},
               {"updatedAt", fs_timestamp("2026-03-01T10:00:00Z")}}},
             {"agents/" + uid("Null"),
              {{"email", fs_string("null@creditplan.it")},
               {"leadSources", fs_null()},
               {"updatedAt", fs_timestamp("2026-03-01T10:00:00Z")}}}});
  }

  std::string uid(const std::string& name) const { return "uid-" + name + "-" + tag_; }

  // Declaration order is construction order (see IncrementalSync).
  const std::string tag_;
  FirestoreEmulator fs_;
  const common::Config config_;
  IsolatedEnvironment env_;
  WorkerThread worker_;
  common::KafkaProducer kafka_;
  producers::SyncRunner runner_;
  std::unique_ptr<pqxx::connection> conn_;
};

TEST_F(FirestoreSync, R1_R2_Seed000TheAgentGetsAimediciLinkedByEmailWithoutADuplicateAndVerifyPasses) {
  const auto pg_key = "pg-77-" + tag_;
  ASSERT_NO_FATAL_FAILURE(seed_postgres_agent(pg_key, "agentedos@creditplan.it"));
  write_seed_000_agents();

  Published run;
  ASSERT_NO_FATAL_FAILURE(sync(run));
  EXPECT_EQ(run.report.failed_records, 0u) << run.report.message;
  EXPECT_EQ(run.upserts, (Keys{uid("Xk29"), uid("Str"), uid("Null")}));

  const auto edos = query("WHERE email = 'agentedos@creditplan.it'", "agent_id, display_name, city, address::text, "
                                                                      "updated_at = '2026-03-01 10:00:00.123456+00'");
  ASSERT_EQ(edos.size(), 1u) << "the Firestore UID created a duplicate agent";
  EXPECT_EQ(edos[0][0].as<std::string>(), pg_key) << "applied to PostgreSQL's agent, not to a new row";
  EXPECT_EQ(edos[0][1].as<std::string>(), "Edoardo");
  EXPECT_EQ(edos[0][2].as<std::string>(), "Milano") << "address.city, a dotted path through the map";
  EXPECT_EQ(json::parse(edos[0][3].as<std::string>()), json::parse(R"({"city": "Milano", "zip": 20121})"));
  EXPECT_TRUE(edos[0][4].as<bool>()) << "the timestamp, to the microsecond";
  EXPECT_EQ(lead_sources_of(pg_key), std::vector<std::string>{"aimedici"});
  EXPECT_EQ(query("WHERE agent_id = '" + uid("Xk29") + "'", "count(*)")[0][0].as<int>(), 0);
  {
    pqxx::work tx(*conn_);
    const auto link = tx.exec_params(
        "SELECT key FROM leadsync.identities WHERE entity = 'agent' AND field = '_key' AND value = $1", uid("Xk29"));
    ASSERT_EQ(link.size(), 1u) << "the Firebase UID is linked to PostgreSQL's agent";
    EXPECT_EQ(link[0][0].as<std::string>(), pg_key);
  }
  // coerce: wrap_scalar — a string is a list of one, null the empty list.
  EXPECT_EQ(lead_sources_of(uid("Str")), std::vector<std::string>{"facebook"});
  EXPECT_EQ(lead_sources_of(uid("Null")), std::vector<std::string>{});

  const auto report = ctl::verify_source(config_, source());
  EXPECT_FALSE(report.drift()) << ctl::format_report(report);
  EXPECT_EQ(report.source_records, 3);
  EXPECT_EQ(report.rejected_records, 0);

  Published again;
  ASSERT_NO_FATAL_FAILURE(sync(again));
  EXPECT_EQ(again.messages, 0) << "an unchanged collection publishes nothing";
}

TEST_F(FirestoreSync, R9_WithAnUpdatedFieldRunsReadOnlyChangedDocumentsAndAFullScanWhenDueFindsTheDeleted) {
  auto incremental = source();
  auto& settings = std::get<common::FirestoreSettings>(incremental.settings);
  settings.updated_field = "updatedAt";
  settings.overlap = 1s;
  auto doc = [&](int i, const std::string& name, const std::string& updated_at) {
    return std::pair<std::string, json>{"agents/" + uid(std::to_string(i)),
                                        {{"email", fs_string("a" + std::to_string(i) + "@x.it")},
                                         {"displayName", fs_string(name)},
                                         {"leadSources", fs_strings({"web"})},
                                         {"updatedAt", fs_timestamp(updated_at)}}};
  };
  std::vector<std::pair<std::string, json>> docs;
  for (int i = 0; i < 30; ++i) {
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "2026-03-01T10:%02d:00Z", i);  // document 29 is the newest
    docs.push_back(doc(i, "Agent", stamp));
  }
  fs_.set(docs);
  Published first;
  ASSERT_NO_FATAL_FAILURE(sync(first, incremental));
  EXPECT_FALSE(first.report.incremental) << "the first run reads everything";
  EXPECT_EQ(first.messages, 30);

  fs_.set({doc(3, "Renamed", "2026-03-01T11:00:00Z"), doc(4, "Renamed", "2026-03-01T11:00:00Z")});
  fs_.remove({"agents/" + uid("7")});
  Published second;
  ASSERT_NO_FATAL_FAILURE(sync(second, incremental));
  EXPECT_TRUE(second.report.incremental);
  EXPECT_EQ(second.report.rows_read, 3u) << "only the documents whose updatedAt moved are read, and document 29 "
                                            "again (within `overlap` of the newest value the last run saw)";
  EXPECT_EQ(second.upserts, (Keys{uid("3"), uid("4")}));
  EXPECT_TRUE(second.deletes.empty()) << "a document an incremental read did not see is not deleted";

  auto due = incremental;
  std::get<common::FirestoreSettings>(due.settings).full_scan_every = 1ms;
  Published third;
  ASSERT_NO_FATAL_FAILURE(sync(third, due));
  EXPECT_FALSE(third.report.incremental) << "full_scan_every has passed: a full read";
  EXPECT_EQ(third.report.rows_read, 29u);
  EXPECT_TRUE(third.upserts.empty());
  EXPECT_EQ(third.deletes, Keys{uid("7")});
}

class FirestoreSyncRejecting : public FirestoreSync {
 protected:
  FirestoreSyncRejecting() : FirestoreSync(common::ListCoerce::kReject) {}
};

TEST_F(FirestoreSyncRejecting, R2_AStringOrNullListIsARowErrorNamingDocumentAndFieldAndNothingOfItIsApplied) {
  write_seed_000_agents();
  Published run;
  ASSERT_NO_FATAL_FAILURE(sync(run));
  EXPECT_EQ(run.upserts, Keys{uid("Xk29")});
  EXPECT_EQ(run.report.failed_records, 2u);
  {
    pqxx::work tx(*conn_);
    const auto errors = tx.exec_params(
        "SELECT key, column_name, message FROM leadsync.run_errors WHERE run_id = $1 ORDER BY key", run.report.run_id);
    ASSERT_EQ(errors.size(), 2u);
    EXPECT_EQ(errors[0][0].as<std::string>(), uid("Null"));
    EXPECT_EQ(errors[1][0].as<std::string>(), uid("Str"));
    for (const auto& e : errors) {
      EXPECT_EQ(e[1].as<std::string>(), "leadSources");
      EXPECT_NE(e[2].as<std::string>().find("coerce: reject"), std::string::npos) << e[2].as<std::string>();
    }
  }
  EXPECT_EQ(lead_sources_of(uid("Str")), std::vector<std::string>{"<no row>"}) << "never half-applied";
  EXPECT_EQ(lead_sources_of(uid("Null")), std::vector<std::string>{"<no row>"});
  const auto report = ctl::verify_source(config_, source());
  EXPECT_FALSE(report.drift()) << ctl::format_report(report);
  EXPECT_EQ(report.rejected_records, 2);
}

class FirestoreSyncBulk : public FirestoreSync {
 protected:
  FirestoreSyncBulk() : FirestoreSync(common::ListCoerce::kWrapScalar, Identity::kKeyOnly) {}
};

TEST_F(FirestoreSyncBulk, R9_TwentyThousandDocumentsThenOnePercentUpdatedAndHalfAPercentDeletedPublishExactlyThose) {
  constexpr int kDocs = 20'000;
  auto id = [](int i) {
    char b[16];
    std::snprintf(b, sizeof b, "d%05d", i);
    return std::string(b);
  };
  auto doc = [&](int i, const std::string& name) {
    return std::pair<std::string, json>{
        "agents/" + id(i),
        {{"email", fs_string(id(i) + "@agents.example")},
         {"displayName", fs_string(name)},
         {"leadSources", fs_strings({"web", i % 3 == 0 ? "aimedici" : "fair"})},
         {"address", fs_map({{"city", fs_string("City " + std::to_string(i % 50))}})},
         {"updatedAt", fs_timestamp("2026-03-01T10:00:00Z")}}};
  };
  std::vector<std::pair<std::string, json>> docs;
  for (int i = 0; i < kDocs; ++i) docs.push_back(doc(i, "Agent " + std::to_string(i)));
  fs_.set(docs);

  Published first;
  ASSERT_NO_FATAL_FAILURE(sync(first));
  ASSERT_EQ(first.report.new_records, static_cast<uint64_t>(kDocs));
  ASSERT_EQ(first.messages, kDocs);
  ASSERT_EQ(query("WHERE NOT _deleted", "count(*)")[0][0].as<int>(), kDocs);

  Keys updated, deleted;
  std::vector<std::pair<std::string, json>> changes;
  std::vector<std::string> removals;
  for (int i = 0; i < kDocs; ++i) {
    if (i % 100 == 7) {  // 1%
      changes.push_back(doc(i, "Renamed " + std::to_string(i)));
      updated.insert(id(i));
    } else if (i % 200 == 50) {  // 0.5%
      removals.push_back("agents/" + id(i));
      deleted.insert(id(i));
    }
  }
  // One more write that changes nothing the mapping sees: its updateTime moves, its checksum not.
  changes.push_back(doc(1, "Agent 1"));
  fs_.set(changes);
  fs_.remove(removals);

  Published second;
  ASSERT_NO_FATAL_FAILURE(sync(second));
  EXPECT_EQ(second.upserts, updated);
  EXPECT_EQ(second.deletes, deleted);
  EXPECT_EQ(second.messages, static_cast<int64_t>(updated.size() + deleted.size()));
  EXPECT_EQ(query("WHERE _deleted", "count(*)")[0][0].as<std::size_t>(), deleted.size());
  EXPECT_EQ(query("WHERE display_name LIKE 'Renamed %'", "count(*)")[0][0].as<std::size_t>(), updated.size());

  Published third;
  ASSERT_NO_FATAL_FAILURE(sync(third));
  EXPECT_EQ(third.messages, 0);
  EXPECT_EQ(third.report.unchanged_records, static_cast<uint64_t>(kDocs) - deleted.size());

  const auto report = ctl::verify_source(config_, source());
  EXPECT_FALSE(report.drift()) << ctl::format_report(report);
}

}  // namespace
}  // namespace leadsync::testing
