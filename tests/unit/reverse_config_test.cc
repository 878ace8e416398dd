// The reverse direction's configuration and conflict rules (issue 9, R11), without servers.
#include <gtest/gtest.h>

#include "common/config.h"
#include "common/errors.h"
#include "workers/targets/twenty_client.h"
#include "workers/targets/twenty_conflicts.h"

namespace leadsync {
namespace {

using common::FieldPriority;

const std::string kEntities = R"(
entities:
  lead:
    table: leads
    key: lead_id
    fields:
      email: {type: text}
      status: {type: text}
      score: {type: int, role: computed}
      twenty_id: {type: text, role: write_back}
)";

const std::string kReverse = R"(
reverse:
  entity: lead
  fields: {email: emails.primaryEmail, status: status, score: score}
  id_field: twenty_id
  priority: {status: crm, score: postgres}
  twenty: {url: "http://127.0.0.1:1/rest"}
)";

std::string error_of(const std::string& yaml) {
  try {
    common::parse_config(yaml);
  } catch (const common::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ReverseConfig, R11_ParsesPrioritiesRolesAndDefaults) {
  const auto c = common::parse_config(kEntities + kReverse);
  ASSERT_TRUE(c.reverse.enabled);
  EXPECT_EQ(c.reverse.priority_of("status"), FieldPriority::kCrm);
  EXPECT_EQ(c.reverse.priority_of("score"), FieldPriority::kPostgres);
  EXPECT_EQ(c.reverse.priority_of("email"), FieldPriority::kLastWriteWins);
  EXPECT_EQ(c.reverse.topic, "leadsync.reverse");
  EXPECT_EQ(c.reverse.dlq_topic, "leadsync.reverse.dlq");
  EXPECT_EQ(c.reverse.twenty.url, "http://127.0.0.1:1/rest/");
  EXPECT_EQ(c.reverse.twenty.batch_size, 60);
  EXPECT_EQ(c.entity("lead").field("twenty_id")->role, common::FieldRole::kWriteBack);
  EXPECT_EQ(c.entity("lead").field("score")->role, common::FieldRole::kComputed);
  EXPECT_EQ(common::reverse_kafka_config(c).group, "leadsync-reverse");
  EXPECT_FALSE(common::parse_config(kEntities).reverse.enabled);
}

TEST(ReverseConfig, R11_RejectsWhatCannotWork) {
  auto replace = [](std::string s, const std::string& from, const std::string& to) {
    return s.replace(s.find(from), from.size(), to);
  };
  EXPECT_NE(error_of(kEntities + replace(kReverse, "id_field: twenty_id", "id_field: email")).find("role: write_back"),
            std::string::npos);
  EXPECT_NE(error_of(kEntities + replace(kReverse, "status: crm", "status: sometimes")).find("reverse.priority.status"),
            std::string::npos);
  EXPECT_NE(error_of(kEntities + replace(kReverse, "twenty: {url: \"http://127.0.0.1:1/rest\"}",
                                         "twenty: {url: \"http://x/\", batch_size: 61}"))
                .find("reverse.twenty.batch_size"),
            std::string::npos);
  // A source may not map a column onto a write-back or computed field.
  const std::string source = R"(
sources:
  - name: s
    kind: csv
    entity: lead
    url: x.csv
    key_column: id
    columns: {id: lead_id, e: email, st: status, sc: score}
)";
  EXPECT_NE(error_of(kEntities + source).find("role: computed"), std::string::npos);
}

common::ChangeEvent pg_event(int64_t version) {
  common::ChangeEvent e;
  e.set_entity("lead");
  e.set_key("L1");
  e.set_source_version(version);
  (*e.mutable_fields())["email"].set_string_value("new@x.test");
  (*e.mutable_fields())["status"].set_string_value("won");
  (*e.mutable_fields())["score"].set_int_value(90);
  return e;
}

const nlohmann::json kCrm = {{"id", "c1"}, {"emails", {{"primaryEmail", "old@x.test"}}}, {"status", "lost"},
                             {"score", 10}};

TEST(ConflictRules, R11_LastWriteWinsOnVersionUnlessAFieldHasAnOwner) {
  const auto c = common::parse_config(kEntities + kReverse);
  for (const auto& [pg_version, email_winner] :
       {std::pair{200, workers::Side::kPostgres}, std::pair{100, workers::Side::kCrm}}) {
    const auto d = workers::decide_fields(c.reverse, pg_event(pg_version), kCrm, 150);
    ASSERT_EQ(d.size(), 3u);
    std::map<std::string, workers::FieldDecision> by;
    for (const auto& x : d) by[x.field] = x;
    EXPECT_EQ(by["email"].winner, email_winner) << "pg version " << pg_version;
    EXPECT_EQ(by["email"].rule, FieldPriority::kLastWriteWins);
    EXPECT_EQ(by["status"].winner, workers::Side::kCrm);  // the CRM owns status whatever the versions
    EXPECT_EQ(by["status"].rule, FieldPriority::kCrm);
    EXPECT_EQ(by["score"].winner, workers::Side::kPostgres);  // PostgreSQL owns score
    EXPECT_EQ(by["score"].postgres_value, 90);
    EXPECT_EQ(by["score"].crm_value, 10);
  }
  auto same = kCrm;
  same["emails"]["primaryEmail"] = "new@x.test";
  same["status"] = "won";
  same["score"] = 90;
  EXPECT_TRUE(workers::decide_fields(c.reverse, pg_event(200), same, 150).empty()) << "equal values are no conflict";
}

TEST(TwentyClient, R11_CreateIdsAreDeterministicUuids) {
  const auto a = workers::crm_id_for("app", "lead", "L1");
  EXPECT_EQ(a, workers::crm_id_for("app", "lead", "L1"));
  EXPECT_NE(a, workers::crm_id_for("app", "lead", "L2"));
  EXPECT_NE(a, workers::crm_id_for("app2", "lead", "L1"));
  ASSERT_EQ(a.size(), 36u);
  EXPECT_EQ(a[14], '8');  // version 8
  EXPECT_TRUE(a[19] == '8' || a[19] == '9' || a[19] == 'a' || a[19] == 'b');
  nlohmann::json rec = nlohmann::json::object();
  workers::set_crm_field(rec, "name.firstName", "Ann");
  ASSERT_NE(workers::crm_field(rec, "name.firstName"), nullptr);
  EXPECT_EQ(*workers::crm_field(rec, "name.firstName"), "Ann");
  EXPECT_EQ(workers::crm_field(rec, "name.lastName"), nullptr);
  common::Value ts;
  ts.set_timestamp_micros(*common::parse_timestamp_micros("2026-01-02T03:04:05.5Z"));
  EXPECT_EQ(workers::crm_json(ts), "2026-01-02T03:04:05.500000Z");
}

}  // namespace
}  // namespace leadsync
