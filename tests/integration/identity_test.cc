// R1 — a record is found even when its ids disagree between systems: an event whose key is new but
// whose alternate key (the normalised e-mail) matches a record is applied to that record, linked,
// and later events with the foreign key follow the link.
#include <gtest/gtest.h>

#include "common/kafka_producer.h"
#include "common/mapping.h"
#include "common/schema.h"
#include "ctl/verify.h"
#include "tests/integration/cluster.h"
#include "workers/targets/identity.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

common::ChangeEvent lead_event(const common::Config& config, const std::string& key, const std::string& email,
                               const std::string& status, int64_t version, const std::string& run_id) {
  common::ChangeEvent e;
  e.set_source("admin-ui");
  e.set_origin("admin-ui");
  e.set_entity("lead");
  e.set_key(key);
  e.set_op(leadsync::v1::OP_UPSERT);
  e.set_source_version(version);
  e.set_observed_at_micros(version);
  e.set_run_id(run_id);
  auto& fields = *e.mutable_fields();
  for (const auto& f : config.entity("lead").fields) fields[f.name].set_null_value(true);
  fields["email"].set_string_value(email);
  fields["status"].set_string_value(status);
  fields["lead_sources"].mutable_string_list()->add_values("aimedici");
  e.set_checksum(common::fields_checksum(fields));
  e.set_event_id(common::make_event_id(e.source(), e.entity(), key, version, e.checksum()));
  return e;
}

void publish(common::KafkaProducer& producer, const common::Config& config, const common::ChangeEvent& e) {
  producer.produce(config.kafka.topic, e.entity() + "/" + e.key(), e.SerializeAsString());
  ASSERT_TRUE(producer.flush(10s));
}

TEST(Identity, R1_AnEventWithAForeignKeyButAKnownEmailUpdatesTheRecordInsteadOfDuplicatingIt) {
  const auto tag = unique_tag("identity");
  auto config = isolated_example_config(tag);
  // Run ids are global in leadsync.run_apply_stats: make them this test's own.
  const auto run = [&](int n) { return tag + "-r" + std::to_string(n); };
  // So are leadsync.identities (per entity name): the foreign ids are this test's own too.
  const auto uid = "uid-Xk29-" + tag;
  const auto other_uid = "uid-Q7-" + tag;
  config.entities.at("lead").match_on = {"email"};
  IsolatedEnvironment env(config);
  WorkerThread worker(config);
  common::KafkaProducer producer(config.kafka);
  auto conn = connect(config);
  const auto table = common::qualified(*conn, config.postgres.schema, "leads");
  auto query = [&](const std::string& sql) {
    pqxx::work tx(*conn);
    return tx.exec(sql);
  };

  // PostgreSQL knows the agent as L-1; the admin UI (Firestore) knows the same person by a UID.
  publish(producer, config, lead_event(config, "L-1", "agentedos@creditplan.it", "new", 100, run(1)));
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, run(1)) >= 1; }, 30s));
  publish(producer, config, lead_event(config, uid, "agentedos@creditplan.it", "qualified", 200, run(2)));
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, run(2)) >= 1; }, 30s));

  auto rows = query("SELECT lead_id, status, _version FROM " + table + " ORDER BY lead_id");
  ASSERT_EQ(rows.size(), 1u) << "the foreign key created a duplicate";
  EXPECT_EQ(rows[0][0].as<std::string>(), "L-1");
  EXPECT_EQ(rows[0][1].as<std::string>(), "qualified");
  EXPECT_EQ(rows[0][2].as<int64_t>(), 200);
  pqxx::result links;
  {
    pqxx::work tx(*conn);
    links = tx.exec_params("SELECT field, value, key FROM leadsync.identities WHERE entity = 'lead' AND key = 'L-1' "
                           "AND (value = $1 OR field = 'email') ORDER BY field, linked_at DESC LIMIT 2",
                           uid);
  }
  ASSERT_EQ(links.size(), 2u);
  EXPECT_EQ(links[0][0].as<std::string>(), "_key");
  EXPECT_EQ(links[0][1].as<std::string>(), uid);
  EXPECT_EQ(links[1][0].as<std::string>(), "email");
  EXPECT_EQ(links[1][1].as<std::string>(), "agentedos@creditplan.it");
  const auto text = worker.telemetry().render_metrics();
  EXPECT_NE(text.find("leadsync_identity_links_total 1"), std::string::npos) << text;

  // The e-mail changes in the admin UI: the stored link still finds the record.
  publish(producer, config, lead_event(config, uid, "dos.agente@creditplan.it", "won", 300, run(3)));
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, run(3)) >= 1; }, 30s));
  rows = query("SELECT lead_id, email, status, _version FROM " + table);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0][1].as<std::string>(), "dos.agente@creditplan.it");
  EXPECT_EQ(rows[0][2].as<std::string>(), "won");
  EXPECT_EQ(rows[0][3].as<int64_t>(), 300);

  // A genuinely new person is still inserted under its own key.
  publish(producer, config, lead_event(config, other_uid, "someone.else@example.com", "new", 400, run(4)));
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, run(4)) >= 1; }, 30s));
  EXPECT_EQ(query("SELECT count(*) FROM " + table)[0][0].as<int>(), 2);
}

TEST(Identity, R1_ABatchRetriedAfterItsTransactionRolledBackRecreatesTheIdentityLink) {
  const auto tag = unique_tag("identity_retry");
  auto config = isolated_example_config(tag);
  config.entities.at("lead").match_on = {"email"};
  auto conn = connect(config);
  common::migrate(*conn, config);
  const auto table = common::qualified(*conn, config.postgres.schema, "leads");
  const auto email = tag + "@example.com";
  pqxx::nontransaction(*conn).exec_params("INSERT INTO " + table + " (lead_id, email, _version) VALUES ('L-1', $1, 1)",
                                          email);
  const auto uid = "uid-" + tag;
  const auto event = lead_event(config, uid, email, "qualified", 200, "");
  const std::vector<const common::ChangeEvent*> batch{&event};
  workers::IdentityResolver resolver(config, config.entity("lead"));

  {  // The first attempt resolves and links, then the database goes away before the commit.
    pqxx::work tx(*conn);
    const auto links = resolver.resolve(tx, batch);
    ASSERT_EQ(links.size(), 1u);
    EXPECT_EQ(links[0].to_key, "L-1");
    tx.abort();
  }
  // The worker retries the same records: they still carry the key they came with, and the link is
  // made again.
  EXPECT_EQ(event.key(), uid);
  pqxx::work tx(*conn);
  const auto links = resolver.resolve(tx, batch);
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].from_key, uid);
  EXPECT_EQ(links[0].to_key, "L-1");
  EXPECT_EQ(links[0].field, "email");
  EXPECT_EQ(tx.exec_params1("SELECT key FROM leadsync.identities WHERE entity = 'lead' AND field = '_key' AND value = $1",
                            uid)[0].as<std::string>(),
            "L-1");
  tx.exec("DROP SCHEMA " + conn->quote_name(config.postgres.schema) + " CASCADE");
  tx.commit();
}

}  // namespace
}  // namespace leadsync::testing
