// R3, R4 — the producer's HTTP API against the real PostgreSQL: sources and runs as JSON, control
// through POSTs that the runner sees, RFC 9457 problem details with the right status codes, the
// bearer token, and the OpenAPI document. The server runs in this process on a free loopback port;
// a runner holds the source in its own session as a producer would.
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <map>

#include "common/errors.h"
#include "common/group_lag.h"
#include "common/runs.h"
#include "common/schema.h"
#include "producers/api/api_server.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::RunControl;
using common::RunStatus;
using common::RunStore;
using common::RunTrigger;
using nlohmann::json;

constexpr const char* kToken = "test-token-7f3a";

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_ = isolated_example_config(unique_tag("api"));
    auto conn = connect(config_);
    common::migrate(*conn, config_);
    source_ = config_.sources.at(0).name;
    start({kToken, true});
  }

  void start(producers::api::ApiAccess access, std::chrono::milliseconds broker_interval = 2s) {
    server_.reset();
    server_ = std::make_unique<producers::api::ApiServer>(config_, std::move(access), broker_interval);
    port_ = server_->start("127.0.0.1:0");
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(10, 0);
  }

  httplib::Result get(const std::string& path, const std::string& token = "") {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return client_->Get(path.c_str(), h);
  }
  httplib::Result post(const std::string& path, const std::string& token = kToken) {
    httplib::Headers h;
    if (!token.empty()) h.emplace("Authorization", "Bearer " + token);
    return client_->Post(path.c_str(), h, "", "application/json");
  }
  // The body of a problem answer, checked for the RFC 9457 members.
  static json problem(const httplib::Result& r, int status) {
    EXPECT_TRUE(r);
    if (!r) return {};
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/problem+json");
    auto j = json::parse(r->body);
    EXPECT_EQ(j["status"], status);
    for (const char* m : {"type", "title", "detail", "instance"}) EXPECT_TRUE(j.contains(m)) << m << " in " << r->body;
    return j;
  }

  common::Config config_;
  std::string source_;
  std::unique_ptr<producers::api::ApiServer> server_;
  std::unique_ptr<httplib::Client> client_;
  int port_ = 0;
};

TEST_F(ApiTest, R4_SourcesAndRunsAreListedAndUnknownOnesAre404Problems) {
  auto session = connect(config_);
  RunStore runner(*session, 1s);
  const auto run = runner.claim(source_, RunTrigger::kSchedule);
  runner.heartbeat(run, {30, 120, std::nullopt, "reading"}, {});

  const auto sources = get("/api/v1/sources");
  ASSERT_TRUE(sources);
  ASSERT_EQ(sources->status, 200);
  bool found = false;
  const auto listed = json::parse(sources->body);
  for (const auto& s : listed["sources"]) {
    if (s["source"] != source_) continue;
    found = true;
    EXPECT_EQ(s["state"], "running");
    EXPECT_EQ(s["active_run"]["run_id"], run.run_id);
    EXPECT_DOUBLE_EQ(s["active_run"]["progress"]["percent"].get<double>(), 25.0);
  }
  EXPECT_TRUE(found) << source_ << " not in " << sources->body;

  const auto one = get("/api/v1/sources/" + source_);
  ASSERT_TRUE(one);
  EXPECT_EQ(json::parse(one->body)["source"], source_);
  const auto runs = get("/api/v1/runs?source=" + source_ + "&limit=5");
  ASSERT_TRUE(runs);
  ASSERT_EQ(runs->status, 200);
  EXPECT_EQ(json::parse(runs->body)["runs"].at(0)["run_id"], run.run_id);
  const auto by_id = get("/api/v1/runs/" + run.run_id);
  ASSERT_TRUE(by_id);
  EXPECT_EQ(json::parse(by_id->body)["status"], "running");

  EXPECT_NE(problem(get("/api/v1/sources/no-such-source"), 404)["detail"].get<std::string>().find("no-such-source"),
            std::string::npos);
  problem(get("/api/v1/runs/no-such-run"), 404);
  problem(get("/api/v1/runs?source=no-such-source"), 404);
  problem(get("/api/v1/runs?limit=abc"), 400);
  problem(post("/api/v1/sources/no-such-source/trigger"), 404);
}

TEST_F(ApiTest, R3_TriggerWhileRunningIs409AndQueuesWithQueue) {
  auto session = connect(config_);
  RunStore runner(*session, 1s);
  const auto run = runner.claim(source_, RunTrigger::kSchedule);
  const auto conflict = problem(post("/api/v1/sources/" + source_ + "/trigger"), 409);
  EXPECT_NE(conflict["detail"].get<std::string>().find(run.run_id), std::string::npos) << conflict.dump();
  const auto queued = post("/api/v1/sources/" + source_ + "/trigger?queue=true");
  ASSERT_TRUE(queued);
  ASSERT_EQ(queued->status, 202) << queued->body;
  const auto body = json::parse(queued->body);
  EXPECT_TRUE(body["behind_running"].get<bool>());
  EXPECT_EQ(body["run"]["status"], "queued");
  problem(post("/api/v1/sources/" + source_ + "/trigger?queue=true"), 409);
}

TEST_F(ApiTest, R4_CancelPauseAndResumeThroughTheApiReachTheRunner) {
  auto session = connect(config_);
  RunStore runner(*session, 1s);
  auto run = runner.claim(source_, RunTrigger::kSchedule);
  const auto cancel = post("/api/v1/sources/" + source_ + "/cancel");
  ASSERT_TRUE(cancel);
  EXPECT_EQ(cancel->status, 202) << cancel->body;
  EXPECT_EQ(json::parse(cancel->body)["stopping_run"], run.run_id);
  EXPECT_EQ(runner.control(run), RunControl::kCancel);
  runner.finish(run, RunStatus::kCancelled, {}, "cancelled by an operator", "");
  problem(post("/api/v1/sources/" + source_ + "/cancel"), 409);  // nothing to cancel

  run = runner.claim(source_, RunTrigger::kSchedule);
  const auto pause = post("/api/v1/sources/" + source_ + "/pause");
  ASSERT_TRUE(pause);
  EXPECT_EQ(pause->status, 200) << pause->body;
  EXPECT_EQ(runner.control(run), RunControl::kPause);
  runner.finish(run, RunStatus::kCancelled, {}, "paused", "");
  EXPECT_EQ(json::parse(get("/api/v1/sources/" + source_)->body)["state"], "paused");
  problem(post("/api/v1/sources/" + source_ + "/trigger"), 409);
  const auto resume = post("/api/v1/sources/" + source_ + "/resume");
  ASSERT_TRUE(resume);
  EXPECT_TRUE(json::parse(resume->body)["was_paused"].get<bool>());
  EXPECT_EQ(json::parse(get("/api/v1/sources/" + source_)->body)["state"], "idle");
}

TEST_F(ApiTest, R4_PostsNeedTheBearerToken) {
  const auto missing = problem(post("/api/v1/sources/" + source_ + "/trigger", ""), 401);
  EXPECT_EQ(post("/api/v1/sources/" + source_ + "/trigger", "")->get_header_value("WWW-Authenticate"), "Bearer");
  problem(post("/api/v1/sources/" + source_ + "/trigger", "wrong-token"), 401);
  problem(post("/api/v1/sources/" + source_ + "/trigger", std::string(kToken) + "x"), 401);
  EXPECT_EQ(get("/api/v1/sources")->status, 200);  // reading on loopback needs none
  // No token configured: control is off.
  start({"", true});
  const auto off = problem(post("/api/v1/sources/" + source_ + "/trigger", kToken), 403);
  EXPECT_NE(off["detail"].get<std::string>().find("LEADSYNC_API_TOKEN"), std::string::npos);
  auto conn = connect(config_);
  RunStore store(*conn, 1s);
  EXPECT_TRUE(store.list(source_, 5).empty()) << "a refused trigger queued a run";
}

TEST_F(ApiTest, R4_ABindBeyondLoopbackNeedsATokenToStartAndForEveryApiRequest) {
  common::ApiConfig api;
  api.address = "0.0.0.0:8070";
  api.token_env = "LEADSYNC_TEST_API_TOKEN_UNSET";
  EXPECT_THROW(producers::api::api_access_from_env(api), common::ConfigError);
  api.address = "127.0.0.1:8070";
  EXPECT_TRUE(producers::api::api_access_from_env(api).loopback_only);
  start({kToken, false});
  problem(get("/api/v1/sources"), 401);
  EXPECT_EQ(get("/api/v1/sources", kToken)->status, 200);
  EXPECT_EQ(get("/")->status, 200);  // the page holds no data; it asks for the token
}

TEST_F(ApiTest, R4_TheOpenApiDocumentDescribesEveryRouteAndThePageNeedsNothingFromElsewhere) {
  const auto doc = get("/api/v1/openapi.json");
  ASSERT_TRUE(doc);
  const auto j = json::parse(doc->body);
  EXPECT_EQ(j["openapi"], "3.1.0");
  for (const char* path : {"/api/v1/sources", "/api/v1/sources/{name}", "/api/v1/sources/{name}/trigger",
                           "/api/v1/sources/{name}/pause", "/api/v1/sources/{name}/resume",
                           "/api/v1/sources/{name}/cancel", "/api/v1/runs", "/api/v1/runs/{id}"}) {
    EXPECT_TRUE(j["paths"].contains(path)) << path;
  }
  const auto page = get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->body.find("<table id=\"runs\">"), std::string::npos);
  EXPECT_NE(page->body.find("createElement(\"progress\")"), std::string::npos);
  for (const char* external : {"src=\"http", "href=\"http", "src='http", "@import", "//cdn"}) {
    EXPECT_EQ(page->body.find(external), std::string::npos) << external;
  }
}

// The status page's Kafka figures through the API, checked against the broker read independently:
// a poison event of the source is dead-lettered by a real worker and counted under the source and
// its class, a payload that is no change event is counted as unattributed, and with the worker
// stopped the messages produced since show as the group's lag on the main topic, with no member.
TEST_F(ApiTest, R5_SourcesShowDeadLettersByClassAndLagShowsTheWorkersGroupBehindWithItsMembers) {
  // Sampled every 200 ms, so the figures follow quickly.
  start({kToken, true}, 200ms);
  IsolatedEnvironment env(config_);
  common::KafkaProducer kafka(config_.kafka);
  const auto& entity = config_.sources.at(0).entity;
  produce_event(kafka, config_.kafka,
                change_event(source_, entity, "poison-1", leadsync::v1::OP_UPSERT, 1,
                             {{"favourite_colour", text("teal")}}, "run-" + unique_tag("dl")));
  kafka.produce(config_.kafka.topic, entity + "/garbage", R"({"lead_id": "not a ChangeEvent"})");
  ASSERT_TRUE(kafka.flush(30s));
  {
    WorkerThread worker(config_);
    ASSERT_TRUE(eventually(
        [&] {
          try {  // a topic just created may not have its leader yet
            return sum(high_watermarks(config_.kafka, config_.kafka.dlq_topic)) >= 2;
          } catch (const std::exception&) {
            return false;
          }
        },
        60s))
        << "the worker did not dead-letter both records";
    ASSERT_TRUE(eventually([&] { return json::parse(get("/api/v1/lag")->body)["members"] == 2; }, 30s))
        << "a running worker is two members (main topic, retry tiers): " << get("/api/v1/lag")->body;
  }
  // The classes as the dead-letter topic's headers say, read without the API.
  std::map<std::string, int> classes;
  for (const auto& d : read_topic(config_.kafka, config_.kafka.dlq_topic)) ++classes[d.header("leadsync-error-class")];
  ASSERT_EQ(classes, (std::map<std::string, int>{{"permanent", 2}}));

  constexpr int kBehind = 3;  // produced with no worker running
  for (int i = 0; i < kBehind; ++i) kafka.produce(config_.kafka.topic, entity + "/later-" + std::to_string(i), "x");
  ASSERT_TRUE(kafka.flush(30s));

  json source, lag, topic;
  const bool shown = eventually(
      [&] {
        source = json::parse(get("/api/v1/sources/" + source_)->body);
        lag = json::parse(get("/api/v1/lag")->body);
        topic = json::parse(get("/api/v1/sources")->body)["dead_letter_topic"];
        return source["dead_letters"] == json{{"permanent", 1}} && topic["unattributed"] == json{{"permanent", 1}} &&
               lag["lag"] == kBehind && lag["members"] == 0;
      },
      30s);
  ASSERT_TRUE(shown) << source.dump() << "\n" << topic.dump() << "\n" << lag.dump();
  EXPECT_EQ(topic["total"], 2);
  EXPECT_EQ(topic["topic"], config_.kafka.dlq_topic);
  EXPECT_TRUE(topic["caught_up"].get<bool>());
  EXPECT_TRUE(topic["error"].is_null()) << topic.dump();
  for (const auto& other : config_.sources) {
    if (other.name == source_) continue;
    EXPECT_EQ(json::parse(get("/api/v1/sources/" + other.name)->body)["dead_letters"], json::object()) << other.name;
  }
  // The main topic first, then each retry tier; the lag is the main topic's, per partition as the
  // watermarks say.
  const auto tiers = common::worker_topics(config_.kafka);
  ASSERT_EQ(lag["topics"].size(), tiers.size()) << lag.dump();
  const auto high = high_watermarks(config_.kafka, config_.kafka.topic);
  EXPECT_EQ(lag["topics"][0]["topic"], config_.kafka.topic);
  EXPECT_EQ(lag["topics"][0]["lag"], kBehind);
  EXPECT_EQ(lag["topics"][0]["committed"], sum(high) - kBehind);
  int64_t partition_lag = 0;
  for (const auto& p : lag["topics"][0]["partitions"]) {
    EXPECT_EQ(p["high"], high.at(p["partition"].get<std::size_t>()));
    partition_lag += p["lag"].get<int64_t>();
  }
  EXPECT_EQ(partition_lag, kBehind);
  for (std::size_t i = 1; i < tiers.size(); ++i) {
    EXPECT_EQ(lag["topics"][i]["topic"], tiers[i]);
    EXPECT_EQ(lag["topics"][i]["lag"], 0);
  }
  EXPECT_TRUE(lag["error"].is_null()) << lag.dump();
  EXPECT_EQ(lag["group"], config_.kafka.group);
}

// Before the broker has anything to say the fields are there, empty, and say why.
TEST_F(ApiTest, R4_WithoutTheTopicsLagAndDeadLettersSayWhyInsteadOfShowingNumbers) {
  start({kToken, true}, 200ms);
  json lag, topic;
  ASSERT_TRUE(eventually(
      [&] {
        lag = json::parse(get("/api/v1/lag")->body);
        topic = json::parse(get("/api/v1/sources")->body)["dead_letter_topic"];
        return lag["error"].is_string() && topic["error"].is_string();
      },
      20s))
      << lag.dump() << "\n" << topic.dump();
  EXPECT_NE(lag["error"].get<std::string>().find(config_.kafka.topic), std::string::npos) << lag.dump();
  EXPECT_TRUE(lag["lag"].is_null());
  EXPECT_TRUE(lag["members"].is_null());
  EXPECT_NE(topic["error"].get<std::string>().find(config_.kafka.dlq_topic), std::string::npos) << topic.dump();
  EXPECT_EQ(json::parse(get("/api/v1/sources/" + source_)->body)["dead_letters"], json::object());
}

}  // namespace
}  // namespace leadsync::testing
