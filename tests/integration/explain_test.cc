// R8 — explain one record against the real broker and database: a record that reached PostgreSQL
// under a foreign key through a match_on link shows the link; a record whose event was
// dead-lettered names the dead letter and its reason; the audit's field changes are listed.
#include <gtest/gtest.h>

#include "ctl/explain.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

common::ChangeEvent lead(const common::Config& config, const std::string& key, const std::string& email,
                         const std::string& notes, int64_t version, const std::string& run_id) {
  std::map<std::string, common::Value> fields;
  for (const auto& f : config.entity("lead").fields) fields[f.name] = null();
  fields["email"] = text(email);
  fields["notes"] = text(notes);
  fields["lead_sources"] = list({});
  auto e = change_event("admin-ui", "lead", key, leadsync::v1::OP_UPSERT, version, fields, run_id);
  e.set_origin("admin-ui");
  return e;
}

TEST(Explain, R8_ExplainShowsTheMatchOnLinkTheAuditAndADeadLetterWithItsReason) {
  const auto tag = unique_tag("explain");
  auto config = isolated_example_config(tag);
  config.entities.at("lead").match_on = {"email"};
  IsolatedEnvironment env(config);
  WorkerThread worker(config);
  common::KafkaProducer producer(config.kafka);
  auto conn = connect(config);
  // leadsync.identities is shared by every test of the entity: keys of this test's own.
  const auto record = tag + "-L1", uid = tag + "-uid", poisoned = tag + "-L2";
  const auto run = tag + "-run";

  const auto created = lead(config, record, record + "@example.com", "first", 100, run);
  produce_event(producer, config.kafka, created);
  ASSERT_TRUE(producer.flush(10s));
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, run) >= 1; }, 60s));
  // The same person under a foreign key: found by e-mail (match_on), linked to the record.
  produce_event(producer, config.kafka, lead(config, uid, record + "@example.com", "second", 200, run));
  // A NUL byte in a text field: the worker rejects it permanently, into the dead-letter topic.
  produce_event(producer, config.kafka, lead(config, poisoned, "p@example.com", std::string("bad \0 byte", 10), 300, run));
  ASSERT_TRUE(producer.flush(10s));
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, run) >= 2; }, 60s));

  const auto linked = ctl::explain_record(config, "lead", uid);
  EXPECT_EQ(linked["record_key"], record);
  ASSERT_TRUE(linked["database"]["exists"].get<bool>());
  EXPECT_EQ(linked["database"]["version"], 200);
  EXPECT_EQ(linked["database"]["origin"], "admin-ui");
  EXPECT_EQ(linked["database"]["fields"]["notes"], "'second'");
  bool key_link = false, email_link = false;
  for (const auto& l : linked["identity_links"]) {
    key_link |= l["field"] == "_key" && l["value"] == uid && l["key"] == record;
    email_link |= l["field"] == "email" && l["value"] == record + "@example.com" && l["key"] == record;
  }
  EXPECT_TRUE(key_link) << linked.dump(2);
  EXPECT_TRUE(email_link) << linked.dump(2);
  bool audited = false;
  for (const auto& c : linked["recent_changes"]) {
    audited |= c["field"] == "notes" && c["old"] == "first" && c["new"] == "second" && c["run_id"] == run;
  }
  EXPECT_TRUE(audited) << linked.dump(2);
  // The creation is read from the row (its _created_* columns), not from an audit row: by the first
  // event, at its version, in its run — the later update did not move it.
  const auto& creation = linked["database"]["created"];
  ASSERT_TRUE(creation.is_object()) << linked.dump(2);
  EXPECT_EQ(creation["version"], 100);
  EXPECT_EQ(creation["event_id"], created.event_id());
  EXPECT_EQ(creation["run_id"], run);
  EXPECT_FALSE(creation["at"].get<std::string>().empty());
  for (const auto& c : linked["recent_changes"]) EXPECT_NE(c["field"], "*") << "a creation audit row was written";
  const auto screen = ctl::format_explain(linked);
  EXPECT_NE(screen.find("by event " + created.event_id() + ", version 100, run " + run), std::string::npos) << screen;
  EXPECT_NE(screen.find("_key " + uid + " -> record " + record), std::string::npos) << screen;
  EXPECT_NE(screen.find("notes: first -> second"), std::string::npos) << screen;

  nlohmann::json dead;
  ASSERT_TRUE(eventually([&] {
    dead = ctl::explain_record(config, "lead", poisoned);
    return !dead["dead_letters"].empty();
  }, 60s)) << dead.dump(2);
  EXPECT_FALSE(dead["database"]["exists"].get<bool>());
  ASSERT_EQ(dead["dead_letters"].size(), 1u) << dead.dump(2);
  EXPECT_EQ(dead["dead_letters"][0]["key"], "lead/" + poisoned);
  EXPECT_EQ(dead["dead_letters"][0]["error_class"], "permanent");
  const auto reason = dead["dead_letters"][0]["error"].get<std::string>();
  EXPECT_NE(reason.find("NUL byte"), std::string::npos) << reason;
  EXPECT_NE(ctl::format_explain(dead).find(reason), std::string::npos);
}

// A row created before creations were kept on the row has its creation only as an audit row
// (field '*'): explain still shows it.
TEST(Explain, R8_ExplainShowsTheCreationOfARowFromBeforeCreationColumnsFromItsAuditRow) {
  const auto tag = unique_tag("explain-old");
  auto config = isolated_example_config(tag);
  IsolatedEnvironment env(config);
  auto conn = connect(config);
  const auto& e = config.entity("lead");
  const auto key = tag + "-L1", run = tag + "-run", event = tag + "-event";
  {
    pqxx::work tx(*conn);
    tx.exec_params("INSERT INTO " + conn->quote_name(config.postgres.schema) + "." + conn->quote_name(e.table) + " (" +
                       conn->quote_name(e.key) + ", _version, _event_id) VALUES ($1, 7, $2)",
                   key, event);
    tx.exec_params("INSERT INTO leadsync.record_changes (entity, key, changes, source, event_id, run_id) "
                   R"(VALUES ('lead', $1, '{{*, NULL, created}}', 'admin-ui', $2, $3))",
                   key, event, run);
    tx.commit();
  }
  const auto shown = ctl::explain_record(config, "lead", key);
  const auto& creation = shown["database"]["created"];
  ASSERT_TRUE(creation.is_object()) << shown.dump(2);
  EXPECT_TRUE(creation["version"].is_null());
  EXPECT_EQ(creation["event_id"], event);
  EXPECT_EQ(creation["run_id"], run);
  const auto screen = ctl::format_explain(shown);
  EXPECT_NE(screen.find("by event " + event + ", run " + run), std::string::npos) << screen;
  pqxx::work tx(*conn);
  tx.exec_params("DELETE FROM leadsync.record_changes WHERE entity = 'lead' AND key = $1", key);
  tx.commit();
}

}  // namespace
}  // namespace leadsync::testing
