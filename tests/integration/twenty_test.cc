// Twenty CRM → PostgreSQL through the real broker and database (issue 9, R12): the fake Twenty
// server (tests/fakes/twenty) polled by the `kind: twenty` source and posting signed webhooks to the
// producer's receiver; a worker applies both to PostgreSQL, where the results are read back.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "common/config.h"
#include "common/kafka_producer.h"
#include "producers/sync_run.h"
#include "producers/twenty/webhook_receiver.h"
#include "tests/fakes/twenty/fake_twenty.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using fakes::twenty::Delivery;
using fakes::twenty::FakeTwenty;
using fakes::twenty::json;
using fakes::twenty::Object;
using fakes::twenty::WebhookMode;
using fakes::twenty::WebhookSender;
using fakes::twenty::WriteOrigin;

constexpr char kSecret[] = "whsec-integration";

common::Config twenty_config(const std::string& tag, const std::string& rest_url) {
  const std::string yaml = R"(
kafka: {brokers: 127.0.0.1:9092, topic: t, partitions: 3, group: g, dlq_topic: d}
postgres: {url: postgresql://localhost/x, schema: s}
entities:
  person:
    table: people
    key: twenty_id
    audit: true
    deletes: soft
    fields:
      first_name: {type: text}
      last_name:  {type: text}
      email:      {type: text, normalize: lower_trim}
      phone:      {type: text}
      city:       {type: text}
      updated_at: {type: timestamp}
sources:
  - name: crm
    kind: twenty
    entity: person
    url: )" + rest_url + R"(
    key_column: id
    columns: {id: twenty_id, name.firstName: first_name, name.lastName: last_name, emails.primaryEmail: email,
              phones.primaryPhoneNumber: phone, city: city, updatedAt: updated_at}
    schedule: 1h
    twenty:
      api_key_env: TWENTY_IT_KEY
      page_size: 200
      webhook: {address: 127.0.0.1:0, secret_env: TWENTY_IT_SECRET, queue: 1000}
)";
  auto config = common::parse_config(yaml);
  const auto example = isolated_example_config(tag);  // the local cluster's addresses
  config.kafka.brokers = example.kafka.brokers;
  config.kafka.properties = example.kafka.properties;
  config.postgres.url = example.postgres.url;
  config.kafka.topic = "t." + tag;
  config.kafka.dlq_topic = "t." + tag + ".dlq";
  config.kafka.group = "g." + tag;
  config.postgres.schema = "t_" + tag;
  config.sources[0].name = "crm-" + tag;
  return config;
}

class TwentyIntegration : public ::testing::Test {
 protected:
  TwentyIntegration()
      : config(twenty_config(unique_tag("twenty"), fake.base_url())), env(config), producer(config.kafka) {
    setenv("TWENTY_IT_KEY", fake.api_key().c_str(), 1);
    setenv("TWENTY_IT_SECRET", kSecret, 1);
  }

  producers::RunReport poll() {
    producers::SyncRunner runner(config, producer, nullptr);
    return runner.run(config.sources[0]);
  }
  // A receiver for the source, and the fake holding a signed delivery for it of every change.
  std::unique_ptr<producers::WebhookReceiver> held_webhooks() {
    auto r = std::make_unique<producers::WebhookReceiver>(config, config.sources[0], &registry);
    const int port = r->start();
    fake.set_webhook("http://127.0.0.1:" + std::to_string(port) + "/webhooks/twenty", kSecret, WebhookMode::kHold);
    return r;
  }
  std::string table() { return "\"" + config.postgres.schema + "\".people"; }
  int64_t count(const std::string& where) {
    auto conn = connect(config);
    pqxx::work tx(*conn);
    return tx.exec1("SELECT count(*) FROM " + table() + " WHERE " + where)[0].as<int64_t>();
  }
  // key -> first_name, for live rows.
  std::map<std::string, std::string> first_names() {
    auto conn = connect(config);
    pqxx::work tx(*conn);
    std::map<std::string, std::string> out;
    for (const auto& row : tx.exec("SELECT twenty_id, first_name FROM " + table() + " WHERE NOT _deleted")) {
      out[row[0].as<std::string>()] = row[1].is_null() ? "" : row[1].as<std::string>();
    }
    return out;
  }
  double webhook_count(const std::string& result) {
    for (const auto& family : registry.Collect()) {
      if (family.name != "leadsync_webhook_requests_total") continue;
      for (const auto& m : family.metric) {
        for (const auto& l : m.label) {
          if (l.name == "result" && l.value == result) return m.counter.value;
        }
      }
    }
    return 0;
  }

  FakeTwenty fake;
  common::Config config;
  IsolatedEnvironment env;
  common::KafkaProducer producer;
  prometheus::Registry registry;
};

double percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  return v[static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5)];
}

TEST_F(TwentyIntegration, R12_TenThousandPeoplePolledInThenChangesAndSoftDeletesByPolling) {
  auto ids = fake.store().seed_people(10'000);
  WorkerThread worker(config);
  const auto first = poll();
  ASSERT_EQ(first.status, common::RunStatus::kCompleted) << first.message;
  EXPECT_EQ(first.rows_read, 10'000u);
  ASSERT_TRUE(eventually([&] { return count("NOT _deleted") == 10'000; }, 120s)) << count("true");
  {
    auto conn = connect(config);
    pqxx::work tx(*conn);
    const auto row = tx.exec_params1("SELECT first_name, last_name, email, phone, _version FROM " + table() +
                                     " WHERE twenty_id = $1", ids[4321]);
    EXPECT_EQ(row[0].as<std::string>(), "First4321");
    EXPECT_EQ(row[1].as<std::string>(), "Last4321");
    EXPECT_EQ(row[2].as<std::string>(), "person4321@example.com");
    EXPECT_EQ(row[3].as<std::string>(), "5554321");
    const auto stored = *fake.store().get(Object::kPeople, ids[4321]);
    EXPECT_EQ(row[4].as<int64_t>(), *common::parse_timestamp_micros(stored["updatedAt"].get<std::string>()));
  }

  // 100 people edited in Twenty, 10 soft-deleted: the next (incremental) run brings exactly those.
  for (int i = 0; i < 100; ++i) {
    fake.store().update(Object::kPeople, ids[i * 97], {{"name", {{"firstName", "Polled" + std::to_string(i)}}}},
                        WriteOrigin::kTest);
  }
  for (int i = 0; i < 10; ++i) fake.store().soft_delete(Object::kPeople, ids[i * 97 + 1], WriteOrigin::kTest);
  const int lists_before = fake.list_requests();
  const auto second = poll();
  ASSERT_EQ(second.status, common::RunStatus::kCompleted) << second.message;
  EXPECT_LE(second.rows_read, 112u);  // 110 changes and the boundary records of the high-water marks
  EXPECT_LE(fake.list_requests() - lists_before, 3);
  EXPECT_EQ(second.deleted_records, 10u);
  ASSERT_TRUE(eventually([&] { return count("first_name LIKE 'Polled%'") == 100 && count("_deleted") == 10; }, 60s));
  EXPECT_EQ(count("NOT _deleted"), 9'990);
}

TEST_F(TwentyIntegration, R12_HundredPeopleUpdatedInTwentyReachPostgresByWebhook) {
  auto ids = fake.store().seed_people(100);
  WorkerThread worker(config);
  ASSERT_EQ(poll().status, common::RunStatus::kCompleted);
  ASSERT_TRUE(eventually([&] { return count("true") == 100; }, 60s));
  auto hooks = held_webhooks();
  for (int i = 0; i < 100; ++i) {
    fake.store().update(Object::kPeople, ids[i], {{"name", {{"firstName", "Hook" + std::to_string(i)}}}},
                        WriteOrigin::kTest);
  }
  auto deliveries = fake.take_held();
  ASSERT_EQ(deliveries.size(), 100u);

  // Delivery -> commit: each delivery is posted one after the other; a watcher reads PostgreSQL
  // every 5 ms and notes when each key first shows its new value (so times are within ~5 ms).
  // The watcher alone decides when it has seen all 100 (or gives up at its deadline): a second
  // reader that stopped it on seeing 100 could stop it between two of its reads, with keys unnoted.
  using Clock = std::chrono::steady_clock;
  std::map<std::string, Clock::time_point> sent, committed;
  const auto deadline = Clock::now() + 60s;
  std::thread watcher([&] {
    auto conn = connect(config);
    while (committed.size() < 100 && Clock::now() < deadline) {
      pqxx::work tx(*conn);
      const auto now = Clock::now();
      for (const auto& row : tx.exec("SELECT twenty_id FROM " + table() + " WHERE first_name LIKE 'Hook%'")) {
        committed.emplace(row[0].as<std::string>(), now);
      }
      tx.commit();
      std::this_thread::sleep_for(5ms);
    }
  });
  const WebhookSender& sender = *fake.webhook_sender();
  for (const auto& d : deliveries) {
    const auto key = json::parse(d.body)["record"]["id"].get<std::string>();
    sent[key] = Clock::now();
    EXPECT_EQ(sender.post(d), 200);
  }
  watcher.join();
  ASSERT_EQ(committed.size(), 100u) << "the watcher saw " << committed.size() << " of 100 keys by its deadline";
  ASSERT_EQ(count("first_name LIKE 'Hook%'"), 100);
  std::vector<double> ms;
  for (const auto& [key, at] : committed) ms.push_back(std::chrono::duration<double, std::milli>(at - sent.at(key)).count());
  ASSERT_EQ(ms.size(), 100u);
  std::printf("[ figures  ] webhook delivery -> PostgreSQL commit, 100 deliveries: median %.1f ms, p95 %.1f ms, max %.1f ms\n",
              percentile(ms, 0.5), percentile(ms, 0.95), percentile(ms, 1.0));
  EXPECT_EQ(webhook_count("accepted"), 100);
  // updatedFields in the audit, beside the worker's per-field rows.
  auto conn = connect(config);
  pqxx::work tx(*conn);
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM leadsync.field_changes WHERE source = $1 AND field = "
                            "'_updated_fields' AND new_value = '[\"name\"]'",
                            config.sources[0].name)[0].as<int64_t>(),
            100);
  EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM leadsync.field_changes WHERE source = $1 AND field = 'first_name'",
                            config.sources[0].name)[0].as<int64_t>(),
            100);
}

TEST_F(TwentyIntegration, R12_AWebhookWithAWrongSignatureAStaleTimestampOrAReplayedNonceGets401AndChangesNothing) {
  auto ids = fake.store().seed_people(3);
  WorkerThread worker(config);
  auto hooks = held_webhooks();
  fake.store().update(Object::kPeople, ids[0], {{"city", "Oslo"}}, WriteOrigin::kTest);
  auto good = fake.take_held();
  ASSERT_EQ(good.size(), 1u);
  const WebhookSender& sender = *fake.webhook_sender();
  ASSERT_EQ(sender.post(good[0]), 200);
  ASSERT_TRUE(eventually([&] { return count("true") == 1; }, 60s));

  // Three forged changes of the other people, each of which would be visible if applied.
  auto forged = [&](const std::string& id) {
    auto record = *fake.store().get(Object::kPeople, id);
    record["name"]["firstName"] = "Mallory";
    record["updatedAt"] = fakes::twenty::format_iso_ms(fake.store().tick());
    return json{{"eventName", "person.updated"}, {"record", record}, {"updatedFields", {"name"}}};
  };
  const auto bad_signature = WebhookSender::with_bad_signature(sender.make(forged(ids[1])));
  const auto stale = sender.make(forged(ids[2]), {.timestamp_ms = std::stoll(good[0].timestamp) - 6 * 60 * 1000,
                                                  .nonce = std::nullopt});
  auto replayed = good[0];  // same nonce, same timestamp, a new (validly signed) body
  replayed.body = forged(ids[0]).dump();
  replayed.signature = fakes::twenty::webhook_signature(kSecret, replayed.timestamp, replayed.body);
  EXPECT_EQ(sender.post(bad_signature), 401);
  EXPECT_EQ(sender.post(stale), 401);
  EXPECT_EQ(sender.post(replayed), 401);
  EXPECT_EQ(sender.post_raw(good[0].body, {}), 401);  // no signature headers at all
  EXPECT_EQ(webhook_count("bad_signature"), 1);
  EXPECT_EQ(webhook_count("stale_timestamp"), 1);
  EXPECT_EQ(webhook_count("replayed_nonce"), 1);
  EXPECT_EQ(webhook_count("missing_headers"), 1);
  // A body over the limit is refused before it is read.
  EXPECT_EQ(sender.post_raw(std::string(2 << 20, ' '), {}), 413);

  // A valid delivery sent after them is applied, so the worker had every chance to apply them too.
  fake.store().update(Object::kPeople, ids[2], {{"city", "Rome"}}, WriteOrigin::kTest);
  ASSERT_EQ(sender.post(fake.take_held().at(0)), 200);
  ASSERT_TRUE(eventually([&] { return count("city = 'Rome'") == 1; }, 60s));
  EXPECT_EQ(count("first_name = 'Mallory'"), 0);
  EXPECT_EQ(count("true"), 2);  // ids[1] never arrived
}

TEST_F(TwentyIntegration, R12_OutOfOrderAndDuplicateDeliveriesAndPollingEndWithTheNewest) {
  auto ids = fake.store().seed_people(1);
  WorkerThread worker(config);
  auto hooks = held_webhooks();
  for (const char* name : {"V1", "V2", "V3"}) {
    fake.store().update(Object::kPeople, ids[0], {{"name", {{"firstName", name}}}}, WriteOrigin::kTest);
  }
  auto held = fake.take_held();
  ASSERT_EQ(held.size(), 3u);  // V1, V2, V3
  const WebhookSender& sender = *fake.webhook_sender();
  // Newest first, then the older ones, then the newest again under a fresh nonce (a duplicate).
  ASSERT_EQ(sender.post(held[2]), 200);
  ASSERT_TRUE(eventually([&] { return first_names()[ids[0]] == "V3"; }, 60s));
  for (int i : {1, 0}) ASSERT_EQ(sender.post(held[i]), 200);
  ASSERT_EQ(sender.post(sender.make(json::parse(held[2].body))), 200);
  // Every delivery acknowledged by Kafka, then a poll bringing the same newest version: once the
  // worker accounted the poll's event, it has applied everything before it in the partition.
  ASSERT_TRUE(eventually([&] { return hooks->published() == 4; }, 10s));
  const auto run = poll();
  ASSERT_EQ(run.status, common::RunStatus::kCompleted) << run.message;
  ASSERT_EQ(run.events_published, 1u);
  ASSERT_TRUE(eventually([&] { auto c = connect(config); return accounted_events(*c, run.run_id) == 1; }, 60s));
  EXPECT_EQ(first_names()[ids[0]], "V3");
  const auto stored = *fake.store().get(Object::kPeople, ids[0]);
  EXPECT_EQ(count("_version = " +
                  std::to_string(*common::parse_timestamp_micros(stored["updatedAt"].get<std::string>()))),
            1);
}

// The bounded queue between the HTTP threads and the publisher: with Kafka unreachable the publisher
// holds one delivery, the queue fills, the next delivery gets 503 and the receiver is not ready.
TEST_F(TwentyIntegration, R12_AFullQueueAnswers503AndTheReceiverIsNotReady) {
  auto unreachable = config;
  unreachable.kafka.brokers = "127.0.0.1:1";
  std::get<common::TwentySettings>(unreachable.sources[0].settings).webhook.queue = 2;
  producers::WebhookReceiver hooks(unreachable, unreachable.sources[0], &registry);
  const int port = hooks.start();
  EXPECT_TRUE(hooks.ready());
  fake.set_webhook("http://127.0.0.1:" + std::to_string(port) + "/webhooks/twenty", kSecret, WebhookMode::kHold);
  auto ids = fake.store().seed_people(4);
  auto held = fake.take_held();
  ASSERT_EQ(held.size(), 4u);
  const WebhookSender& sender = *fake.webhook_sender();
  ASSERT_EQ(sender.post(held[0]), 200);  // taken by the publisher, which now waits for Kafka
  ASSERT_TRUE(eventually([&] { return hooks.queue_depth() == 0; }, 5s));
  EXPECT_EQ(sender.post(held[1]), 200);
  EXPECT_EQ(sender.post(held[2]), 200);
  EXPECT_FALSE(hooks.ready());
  EXPECT_EQ(sender.post(held[3]), 503);
  EXPECT_EQ(webhook_count("queue_full"), 1);
}

}  // namespace
}  // namespace leadsync::testing
