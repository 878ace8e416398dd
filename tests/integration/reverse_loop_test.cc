// The loop test of issue 9 ("Done when", R11/R12): both directions at once for 60 s — the `kind:
// twenty` adapter polling the fake Twenty with its webhooks on, the PostgreSQL worker, leadsync-capture
// and the CRM sink — while an application edits rows in PostgreSQL and users edit the same people in
// Twenty. At the end both sides hold the same values, nothing moves once the edits stop (no
// ping-pong), what was captured is exactly the application's edits and the CRM values refused for a
// field PostgreSQL owns (no echo of leadsync's own writes), the CRM got at most one write per captured
// change, and conflicts were recorded.
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <cstdlib>
#include <random>

#include "common/kafka_producer.h"
#include "producers/sync_run.h"
#include "producers/twenty/webhook_receiver.h"
#include "tests/fakes/twenty/fake_twenty.h"
#include "tests/integration/reverse_support.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using fakes::twenty::FakeTwenty;
using fakes::twenty::Object;
using fakes::twenty::WebhookMode;
using fakes::twenty::WriteOrigin;
using nlohmann::json;

constexpr char kSecret[] = "whsec-loop";
constexpr int kCrmPeople = 20;  // created in Twenty, polled in
constexpr int kPgRows = 5;      // created by the application, sent to Twenty

std::chrono::seconds edit_duration() {
  const char* s = std::getenv("LEADSYNC_LOOP_SECONDS");  // shorter runs while developing
  return std::chrono::seconds(s ? std::atoi(s) : 60);
}

// What one record holds on either side, as text.
struct Image {
  std::string first_name, last_name, email, status, score;
  bool operator==(const Image&) const = default;
};
std::string show(const Image& i) {
  return i.first_name + "|" + i.last_name + "|" + i.email + "|" + i.status + "|" + i.score;
}

TEST(ReverseLoop, R11_SixtySecondsOfEditsOnBothSidesEndEqualWithoutEchoesAndWritesBoundedByTheEdits) {
  FakeTwenty fake;
  fake.store().add_field(Object::kPeople, "status", nullptr);
  fake.store().add_field(Object::kPeople, "score", nullptr);
  ::setenv("TWENTY_API_KEY", fake.api_key().c_str(), 1);
  ::setenv("TWENTY_LOOP_SECRET", kSecret, 1);
  const auto tag = unique_tag("loop");
  // status always from the CRM, score always from PostgreSQL, the names last-write-wins.
  const auto config = roundtrip_config(tag, fake.base_url(), "{status: crm, score: postgres}", "TWENTY_LOOP_SECRET");
  ReverseEnvironment env(config);
  auto conn = connect(config);
  const auto table = lead_table(config);
  auto sql = [&](const std::string& text) {
    pqxx::work tx(*conn);
    auto r = tx.exec(text);
    tx.commit();
    return r;
  };
  auto scalar = [&](const std::string& text) { return sql(text)[0][0].as<int64_t>(); };

  common::KafkaProducer producer(config.kafka);
  std::atomic<int> failed_polls{0};
  auto poll = [&] {
    producers::SyncRunner runner(config, producer, nullptr);
    const auto report = runner.run(config.sources.at(0));
    if (report.status != common::RunStatus::kCompleted) {
      ++failed_polls;
      ADD_FAILURE() << "poll: " << report.message;
    }
  };

  // Set-up: people from Twenty polled in, rows from the application created in Twenty and linked.
  const auto crm_ids = fake.store().seed_people(kCrmPeople);
  WorkerThread inbound(config);
  ReversePipeline pipeline(config);
  prometheus::Registry registry;
  producers::WebhookReceiver receiver(config, config.sources.at(0), &registry);
  const int port = receiver.start();
  fake.set_webhook("http://127.0.0.1:" + std::to_string(port) + "/webhooks/twenty", kSecret, WebhookMode::kSend);
  poll();
  for (int i = 0; i < kPgRows; ++i) {
    sql("INSERT INTO " + table + " (lead_id, first_name, last_name, email, status, score) VALUES ('" + tag + "-" +
        std::to_string(i) + "', 'App', 'Row" + std::to_string(i) + "', 'app" + std::to_string(i) + "@x.test', 'new', " +
        std::to_string(i) + ")");
  }
  ASSERT_TRUE(eventually(
      [&] {
        return scalar("SELECT count(*) FROM " + table + " WHERE twenty_id IS NOT NULL") == kPgRows &&
               scalar("SELECT count(*) FROM " + table + " WHERE _source = '" + config.sources[0].name + "'") ==
                   kCrmPeople + kPgRows;
      },
      60s))
      << "rows: " << scalar("SELECT count(*) FROM " + table);
  ASSERT_EQ(scalar("SELECT count(*) FROM " + table), kCrmPeople + kPgRows);
  // Every record by its key in PostgreSQL and its id in Twenty.
  std::vector<std::pair<std::string, std::string>> records;  // (lead_id, twenty id)
  for (const auto& r : sql("SELECT lead_id, coalesce(twenty_id, lead_id) FROM " + table + " ORDER BY lead_id")) {
    records.emplace_back(r[0].as<std::string>(), r[1].as<std::string>());
  }

  // 60 s of edits on both sides, one every 50–150 ms each, of overlapping fields.
  std::atomic<bool> editing{true};
  std::atomic<int> pg_edits{0}, crm_edits{0};
  auto pg_editor = std::thread([&] {
    std::mt19937 rng(1);
    auto pg = connect(config);
    for (int n = 0; editing.load(); ++n) {
      const auto& key = records[rng() % records.size()].first;
      const char* field[] = {"first_name", "last_name", "status", "score"};
      const auto f = field[rng() % 4];
      const std::string value = std::string(f) == "score" ? std::to_string(1000 + n) : "'pg-" + std::to_string(n) + "'";
      pqxx::work tx(*pg);
      const auto changed = tx.exec_params(std::string("UPDATE ") + table + " SET " + f + " = " + value +
                                              " WHERE lead_id = $1",
                                          key)
                               .affected_rows();
      tx.commit();
      pg_edits += static_cast<int>(changed);
      std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 100));
    }
  });
  auto crm_editor = std::thread([&] {
    std::mt19937 rng(2);
    for (int n = 0; editing.load(); ++n) {
      const auto& id = records[rng() % records.size()].second;
      json change;
      switch (rng() % 4) {
        case 0: change = {{"name", {{"firstName", "crm-" + std::to_string(n)}}}}; break;
        case 1: change = {{"name", {{"lastName", "crm-" + std::to_string(n)}}}}; break;
        case 2: change = {{"status", "crm-" + std::to_string(n)}}; break;
        default: change = {{"score", 5000 + n}}; break;
      }
      if (std::holds_alternative<json>(fake.store().update(Object::kPeople, id, change, WriteOrigin::kTest))) ++crm_edits;
      std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 100));
    }
  });
  std::atomic<bool> polling{true};
  auto poller = std::thread([&] {
    while (polling.load()) {
      poll();
      std::this_thread::sleep_for(1s);
    }
  });
  const auto started = Clock::now();
  std::this_thread::sleep_for(edit_duration());
  editing = false;
  pg_editor.join();
  crm_editor.join();

  auto pg_image = [&](const std::string& key) {
    const auto r = sql("SELECT coalesce(first_name, ''), coalesce(last_name, ''), coalesce(email, ''), "
                       "coalesce(status, ''), coalesce(score::text, '') FROM " + table + " WHERE lead_id = " +
                       conn->quote(key));
    return Image{r[0][0].as<std::string>(), r[0][1].as<std::string>(), r[0][2].as<std::string>(),
                 r[0][3].as<std::string>(), r[0][4].as<std::string>()};
  };
  auto crm_image = [&](const std::string& id) {
    const auto p = *fake.store().get(Object::kPeople, id);
    auto text = [](const json& j) { return j.is_null() ? std::string() : j.is_string() ? j.get<std::string>() : j.dump(); };
    return Image{text(p["name"]["firstName"]), text(p["name"]["lastName"]), text(p["emails"]["primaryEmail"]),
                 text(p["status"]), text(p["score"])};
  };
  std::string differing;
  const bool converged = eventually(
      [&] {
        differing.clear();
        for (const auto& [key, id] : records) {
          const auto a = pg_image(key), b = crm_image(id);
          if (!(a == b)) differing += "\n  " + key + ": postgres " + show(a) + " crm " + show(b);
        }
        return differing.empty() && outbox_rows(*conn, config) == 0;
      },
      60s);
  const auto converged_after = Clock::now() - started;
  // Quiet: with the poller and webhooks still on, nothing may move any more.
  const auto kafka_reverse = common::reverse_kafka_config(config);
  const auto writes_then = fake.store().total_api_writes();
  const auto audit = "SELECT count(*) FROM leadsync.field_changes WHERE entity = 'lead' AND source = ANY(ARRAY['" +
                     config.sources[0].name + "', '" + config.reverse.source + "'])";
  const auto audit_then = scalar(audit);
  const auto captured_then = read_topic(kafka_reverse, config.reverse.topic).size();
  std::this_thread::sleep_for(5s);
  polling = false;
  poller.join();
  ASSERT_TRUE(converged) << "the two sides differ:" << differing;
  EXPECT_EQ(fake.store().total_api_writes(), writes_then) << "writes to the CRM went on after the edits stopped";
  EXPECT_EQ(scalar(audit), audit_then) << "writes to PostgreSQL went on after the edits stopped";
  const auto captured = read_topic(kafka_reverse, config.reverse.topic).size();
  EXPECT_EQ(captured, captured_then);

  // No echo: what was captured is exactly the application's statements (its inserts and edits) and
  // the CRM values of score refused in PostgreSQL (each sent back so that the CRM converges); the CRM
  // got at most one write per captured change; the inbound side published each CRM change at most
  // twice (its webhook and one poll).
  std::string keys;
  for (const auto& [key, id] : records) keys += (keys.empty() ? "'" : ", '") + key + "'";
  const auto refused = scalar("SELECT count(*) FROM leadsync.conflict_decisions WHERE entity = 'lead' AND key IN (" +
                              keys + ") AND direction = 'to_postgres' AND winner = 'postgres'");
  const int pg_total = kPgRows + pg_edits.load();
  EXPECT_EQ(captured, static_cast<std::size_t>(pg_total + refused)) << "leadsync's own writes were captured";
  EXPECT_LE(fake.store().total_api_writes(), pg_total + refused);
  const auto inbound_events = read_topic(config.kafka, config.kafka.topic).size();
  const int crm_changes = kCrmPeople + crm_edits.load() + fake.store().total_api_writes();
  EXPECT_LE(inbound_events, static_cast<std::size_t>(2 * crm_changes));
  const auto conflicts = scalar("SELECT count(*) FROM leadsync.conflict_decisions WHERE entity = 'lead' AND key IN (" +
                                keys + ")");
  const auto to_postgres = scalar("SELECT count(*) FROM leadsync.conflict_decisions WHERE entity = 'lead' AND key IN (" +
                                  keys + ") AND direction = 'to_postgres'");
  EXPECT_GT(conflicts - to_postgres, 0) << "no conflict decided by the sink was recorded";
  EXPECT_GT(to_postgres, 0) << "no conflict decided on the way into PostgreSQL was recorded";
  EXPECT_EQ(failed_polls.load(), 0);
  EXPECT_EQ(scalar("SELECT count(*) FROM " + table), kCrmPeople + kPgRows) << "a record was duplicated";
  std::printf("[ figures  ] %lld s of edits: %d PostgreSQL edits (+%d inserts), %d Twenty edits; captured %zu (%lld "
              "refused CRM scores sent back), CRM writes %d (%d creates), inbound events %zu, conflict decisions %lld "
              "(%lld to_postgres); both sides equal %.1f s after the edits began\n",
              static_cast<long long>(edit_duration().count()), pg_edits.load(), kPgRows, crm_edits.load(), captured,
              static_cast<long long>(refused),
              fake.store().total_api_writes(), fake.store().api_creates(), inbound_events,
              static_cast<long long>(conflicts), static_cast<long long>(to_postgres),
              std::chrono::duration<double>(converged_after).count());
}

}  // namespace
}  // namespace leadsync::testing
