// The fake Twenty server itself (tests/fakes/twenty): the contract of sources.md that the adapter's
// and the reverse direction's tests rely on — keyset pagination that moves when records change
// during a read, filters, soft deletes, 429s, writes and their counters, signed webhooks.
#include <httplib.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fakes/twenty/fake_twenty.h"

namespace leadsync::fakes::twenty {
namespace {

class FakeTwentyTest : public ::testing::Test {
 protected:
  FakeTwenty fake;
  httplib::Client client{"127.0.0.1", fake.port()};
  httplib::Headers auth{{"Authorization", "Bearer " + fake.api_key()}};

  json get(const std::string& path, int expect = 200) {
    auto res = client.Get(path.c_str(), auth);
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, expect) << res->body;
    return json::parse(res->body);
  }
  json send(const std::string& method, const std::string& path, const json& body, int expect) {
    httplib::Result res = method == "PATCH" ? client.Patch(path.c_str(), auth, body.dump(), "application/json")
                                            : client.Post(path.c_str(), auth, body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return {};
    EXPECT_EQ(res->status, expect) << res->body;
    return json::parse(res->body);
  }
  // Reads every page of people with `limit`, calling `between` after each page.
  std::vector<std::string> read_all(const std::string& filter, int limit,
                                    const std::function<void(int)>& between = nullptr) {
    std::vector<std::string> ids;
    std::string cursor;
    for (int page = 0;; ++page) {
      httplib::Params params{{"order_by", "updatedAt[AscNullsFirst],id"}, {"limit", std::to_string(limit)}};
      if (!filter.empty()) params.emplace("filter", filter);
      if (!cursor.empty()) params.emplace("starting_after", cursor);
      auto res = client.Get("/rest/people", params, auth);
      EXPECT_TRUE(res && res->status == 200);
      if (!res || res->status != 200) return ids;
      json body = json::parse(res->body);
      for (const auto& p : body["data"]["people"]) ids.push_back(p["id"]);
      if (!body["pageInfo"]["hasNextPage"].get<bool>()) return ids;
      cursor = body["pageInfo"]["endCursor"];
      if (between) between(page);
    }
  }
};

TEST_F(FakeTwentyTest, ListsEveryPersonOnceInUpdatedAtOrderAcrossPages) {
  auto seeded = fake.store().seed_people(150);
  auto ids = read_all("", 60);
  EXPECT_EQ(ids, seeded);  // created one after another: updatedAt order is creation order
  json page = get("/rest/people?limit=60");
  EXPECT_EQ(page["totalCount"], 150);
  EXPECT_EQ(page["data"]["people"].size(), 60u);
  EXPECT_EQ(page["data"]["people"][0]["name"]["firstName"], "First0");
  EXPECT_EQ(page["data"]["people"][0]["emails"]["primaryEmail"], "person0@example.com");
}

TEST_F(FakeTwentyTest, RecordUpdatedDuringAReadMovesBehindThePageBoundaryAndIsReadAgain) {
  auto seeded = fake.store().seed_people(10);
  auto ids = read_all("", 4, [&](int page) {
    if (page == 0) {
      fake.store().update(Object::kPeople, seeded[1], {{"city", "Oslo"}}, WriteOrigin::kTest);  // already read
      fake.store().update(Object::kPeople, seeded[6], {{"city", "Rome"}}, WriteOrigin::kTest);  // not yet read
    }
  });
  // seeded[1] twice (before and after its update), seeded[6] once, at its new place at the end.
  std::vector<std::string> expected = {seeded[0], seeded[1], seeded[2], seeded[3], seeded[4], seeded[5],
                                       seeded[7], seeded[8], seeded[9], seeded[1], seeded[6]};
  EXPECT_EQ(ids, expected);
}

TEST_F(FakeTwentyTest, FiltersByUpdatedAtAndListsSoftDeletedOnlyWhenTheFilterNamesDeletedAt) {
  auto seeded = fake.store().seed_people(5);
  std::string since = std::get<json>(fake.store().update(Object::kPeople, seeded[3], {{"jobTitle", "CEO"}},
                                                         WriteOrigin::kTest))["updatedAt"];
  fake.store().soft_delete(Object::kPeople, seeded[0], WriteOrigin::kTest);
  EXPECT_EQ(read_all("updatedAt[gte]:\"" + since + "\"", 60), std::vector<std::string>{seeded[3]});
  EXPECT_EQ(read_all("", 60).size(), 4u);
  EXPECT_EQ(read_all("deletedAt[is]:NOT_NULL", 60), std::vector<std::string>{seeded[0]});
  EXPECT_EQ(read_all("and(updatedAt[gte]:\"" + since + "\",deletedAt[is]:NOT_NULL)", 60),
            std::vector<std::string>{seeded[0]});
  get("/rest/people/" + seeded[0], 404);
  get("/rest/people?filter=updatedAt[gte]:oops", 400);
  get("/rest/people?order_by=createdAt", 400);
}

TEST_F(FakeTwentyTest, RejectsRequestsWithoutTheBearerToken) {
  auto res = client.Get("/rest/people");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
  res = client.Get("/rest/people", {{"Authorization", "Bearer wrong"}});
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 401);
}

TEST_F(FakeTwentyTest, AnswersABurstOf429WithRetryAfterThenRecovers) {
  fake.fail_next(2, 429, 3);
  for (int i = 0; i < 2; ++i) {
    auto res = client.Get("/rest/people", auth);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 429);
    EXPECT_EQ(res->get_header_value("Retry-After"), "3");
  }
  get("/rest/people");
  EXPECT_EQ(fake.requests_with_status(429), 2);
  EXPECT_EQ(fake.requests_with_status(200), 1);
}

TEST_F(FakeTwentyTest, RateLimitAnswers429PastTheBudgetOfTheWindow) {
  fake.set_rate_limit(3, std::chrono::seconds(60));
  for (int i = 0; i < 3; ++i) get("/rest/people");
  auto res = client.Get("/rest/people", auth);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 429);
  EXPECT_GE(std::stoi(res->get_header_value("Retry-After")), 1);
}

TEST_F(FakeTwentyTest, WritesMergeCompositeSubfieldsAndAreCountedPerRecord) {
  json created = send("POST", "/rest/people",
                      {{"name", {{"firstName", "Ann"}, {"lastName", "Lee"}}}, {"emails", {{"primaryEmail", "a@x"}}}},
                      201)["data"]["createPerson"];
  std::string id = created["id"];
  json updated = send("PATCH", "/rest/people/" + id, {{"name", {{"lastName", "Li"}}}}, 200)["data"]["updatePerson"];
  EXPECT_EQ(updated["name"]["firstName"], "Ann");
  EXPECT_EQ(updated["name"]["lastName"], "Li");
  EXPECT_GT(updated["updatedAt"].get<std::string>(), created["updatedAt"].get<std::string>());
  send("PATCH", "/rest/people/" + id, {{"nickname", "x"}}, 400);
  send("PATCH", "/rest/people/" + id, {{"name", {{"middleName", "x"}}}}, 400);
  send("PATCH", "/rest/people/00000000-0000-4000-8000-000000000000", {{"city", "x"}}, 404);
  fake.store().update(Object::kPeople, id, {{"city", "Oslo"}}, WriteOrigin::kTest);  // a user's edit: not counted
  EXPECT_EQ(fake.store().api_writes(id), 2);
  EXPECT_EQ(fake.store().api_creates(), 1);
}

TEST_F(FakeTwentyTest, BatchCreatesAtMostSixtyAllOrNothingAndUpsertsByIdWhenAsked) {
  json batch = json::array();
  for (int i = 0; i < 61; ++i) batch.push_back({{"city", "c" + std::to_string(i)}});
  send("POST", "/rest/batch/people", batch, 400);
  batch.erase(batch.size() - 1);
  batch[59] = {{"nope", 1}};  // one bad record fails the whole batch
  send("POST", "/rest/batch/people", batch, 400);
  EXPECT_EQ(fake.store().size(Object::kPeople), 0u);
  batch[59] = {{"id", "11111111-1111-4111-8111-111111111111"}, {"city", "x"}};
  EXPECT_EQ(send("POST", "/rest/batch/people", batch, 201)["data"]["createPeople"].size(), 60u);
  EXPECT_EQ(fake.store().size(Object::kPeople), 60u);
  // The same id again: a create fails (no duplicate), an upsert updates.
  json again = json::array({{{"id", "11111111-1111-4111-8111-111111111111"}, {"city", "y"}}});
  send("POST", "/rest/batch/people", again, 400);
  send("POST", "/rest/batch/people?upsert=true", again, 201);
  EXPECT_EQ(fake.store().size(Object::kPeople), 60u);
  EXPECT_EQ(fake.store().api_writes("11111111-1111-4111-8111-111111111111"), 2);
  EXPECT_EQ(fake.batch_requests(), 5);
}

TEST(WebhookSignature, IsHexHmacSha256OfTimestampColonRawBody) {
  // printf '%s' '1700000000000:{"eventName":"person.updated"}' | openssl dgst -sha256 -hmac whsec-test
  EXPECT_EQ(webhook_signature("whsec-test", "1700000000000", R"({"eventName":"person.updated"})"),
            "99ef45ae6cc3bbfdbfcc2e4e34d630a02afb6c5d45c856a91d7525d95135488e");
}

TEST_F(FakeTwentyTest, SendsASignedWebhookForEveryChangeInOrder) {
  std::mutex mu;
  std::vector<std::pair<json, httplib::Headers>> got;
  httplib::Server receiver;
  receiver.Post("/hook", [&](const httplib::Request& req, httplib::Response& res) {
    std::lock_guard lock(mu);
    got.emplace_back(json::parse(req.body), req.headers);
    EXPECT_EQ(req.get_header_value("X-Twenty-Webhook-Signature"),
              webhook_signature("s3cret", req.get_header_value("X-Twenty-Webhook-Timestamp"), req.body));
    res.status = 200;
  });
  int port = receiver.bind_to_any_port("127.0.0.1");
  std::thread t([&] { receiver.listen_after_bind(); });
  fake.set_webhook("http://127.0.0.1:" + std::to_string(port) + "/hook", "s3cret", WebhookMode::kSend);
  auto id = fake.store().seed_people(1)[0];
  fake.store().update(Object::kPeople, id, {{"jobTitle", "CEO"}, {"city", "Lisbon"}}, WriteOrigin::kTest);
  fake.store().soft_delete(Object::kPeople, id, WriteOrigin::kTest);
  EXPECT_TRUE(fake.wait_webhooks_sent(std::chrono::seconds(10)));
  receiver.stop();
  t.join();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].first["eventName"], "person.created");
  EXPECT_EQ(got[1].first["eventName"], "person.updated");
  EXPECT_EQ(got[1].first["updatedFields"], json::array({"jobTitle"}));  // city was Lisbon already
  EXPECT_EQ(got[1].first["record"]["jobTitle"], "CEO");
  EXPECT_EQ(got[2].first["eventName"], "person.deleted");
  EXPECT_FALSE(got[2].first["record"]["deletedAt"].is_null());
  std::set<std::string> nonces;
  for (const auto& [body, headers] : got) nonces.insert(headers.find("X-Twenty-Webhook-Nonce")->second);
  EXPECT_EQ(nonces.size(), 3u);
  EXPECT_EQ(fake.webhook_statuses(), (std::vector<int>{200, 200, 200}));
}

TEST_F(FakeTwentyTest, HeldDeliveriesCanBeSpoiledReplayedAndReordered) {
  fake.set_webhook("http://127.0.0.1:1/unused", "s3cret", WebhookMode::kHold);
  auto id = fake.store().seed_people(1)[0];
  fake.store().update(Object::kPeople, id, {{"city", "Oslo"}}, WriteOrigin::kTest);
  auto held = fake.take_held();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_TRUE(fake.take_held().empty());
  const WebhookSender& sender = *fake.webhook_sender();
  auto bad = WebhookSender::with_bad_signature(held[1]);
  EXPECT_NE(bad.signature, held[1].signature);
  EXPECT_EQ(bad.body, held[1].body);
  auto stale = sender.make(json::parse(held[1].body), {.timestamp_ms = 1'000, .nonce = std::nullopt});
  EXPECT_EQ(stale.timestamp, "1000");
  EXPECT_EQ(stale.signature, webhook_signature("s3cret", "1000", stale.body));
  auto replay = sender.make(json::parse(held[0].body), {.timestamp_ms = std::nullopt, .nonce = held[0].nonce});
  EXPECT_EQ(replay.nonce, held[0].nonce);
}

}  // namespace
}  // namespace leadsync::fakes::twenty
