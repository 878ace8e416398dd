// R15 — scoring and segments through the real broker and database: the example sheet synced with
// rules in its config ends with every record's score and segment equal to a computation written in
// this test from the sheet's cells; changing one rule's points re-publishes exactly the records whose
// score or segment changes (counted on the topic); each run names its rule set, each audited score
// change names its run; `leadsyncctl score` explains a record with the rules that matched.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "common/csv.h"
#include "common/scoring.h"
#include "producers/sync_run.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;

std::string lower_trim(std::string s) {
  const auto a = s.find_first_not_of(" \t\r\n");
  if (a == std::string::npos) return "";
  s = s.substr(a, s.find_last_not_of(" \t\r\n") - a + 1);
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The rules under test; `referral` is the rule whose points the second run changes.
std::string rules_yaml(int referral_points) {
  return R"(
scoring:
  field: priority
  floor: 0
  cap: 100
  rules:
    - {name: qualified, points: 30, when: {field: status, in: [qualified, proposal]}}
    - {name: high sheet score, points: 25, when: {field: score, gte: 70}}
    - {name: referral, points: )" +
         std::to_string(referral_points) + R"(, when: {field: lead_sources, contains: Referral}}
    - {name: company e-mail, points: 10, when: {not: {field: email, matches: '@(gmail|yahoo|hotmail|outlook)\.'}}}
    - {name: lost, points: -40, when: {field: status, equals: lost}}
segments:
  field: segment
  default: nurture
  rules:
    - {name: hot, when: {field: priority, gte: 60}}
    - {name: warm, when: {all: [{field: priority, gte: 30}, {not: {field: status, in: [lost, won]}}]}}
)";
}

// The same rules computed from the raw cells, independently of the rule engine and the mapping.
struct Expected {
  int64_t priority = 0;
  std::string segment;
  bool operator==(const Expected&) const = default;
};

Expected expected_for(const std::vector<std::string>& cells, int referral_points) {
  const auto status = lower_trim(cells.at(6));
  const auto email = lower_trim(cells.at(3));
  const auto sheet_score = lower_trim(cells.at(9));
  bool referral = false;
  std::string rest = cells.at(8) + ",";
  for (std::size_t pos; (pos = rest.find(',')) != std::string::npos; rest.erase(0, pos + 1)) {
    referral = referral || lower_trim(rest.substr(0, pos)) == "referral";
  }
  const auto at = email.find('@');
  bool free_mail = false;
  for (const char* d : {"gmail.", "yahoo.", "hotmail.", "outlook."}) {
    free_mail = free_mail || (at != std::string::npos && email.compare(at + 1, std::strlen(d), d) == 0);
  }
  int64_t p = 0;
  if (status == "qualified" || status == "proposal") p += 30;
  if (!sheet_score.empty() && std::stoll(sheet_score) >= 70) p += 25;
  if (referral) p += referral_points;
  if (!free_mail) p += 10;
  if (status == "lost") p -= 40;
  p = std::clamp<int64_t>(p, 0, 100);
  std::string segment = "nurture";
  if (p >= 60) {
    segment = "hot";
  } else if (p >= 30 && status != "lost" && status != "won") {
    segment = "warm";
  }
  return {p, segment};
}

std::map<std::string, std::vector<std::string>> read_sheet(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  common::CsvReader reader(in);
  common::CsvRecord record;
  std::optional<common::CsvError> error;
  std::map<std::string, std::vector<std::string>> rows;
  bool header = true;
  while (reader.next(record, error)) {
    if (header) {
      header = false;
      continue;
    }
    rows.emplace(record.cells.at(0), record.cells);
  }
  return rows;
}

// The example config of `base` with the computed fields and the rules added, as YAML text.
std::string with_rules(const common::Config& base, int referral_points) {
  auto doc = YAML::Load(config_yaml(base));
  auto lead = doc["entities"]["lead"];
  lead["fields"]["priority"] = YAML::Load("{type: int, role: rules}");
  lead["fields"]["segment"] = YAML::Load("{type: text, role: rules}");
  const auto rules = YAML::Load(rules_yaml(referral_points));
  lead["scoring"] = rules["scoring"];
  lead["segments"] = rules["segments"];
  return YAML::Dump(doc);
}

std::map<std::string, Expected> read_table(pqxx::connection& conn, const common::Config& config) {
  pqxx::work tx(conn);
  const auto rows = tx.exec("SELECT lead_id, priority, segment FROM " +
                            common::qualified(conn, config.postgres.schema, "leads") + " WHERE NOT _deleted");
  std::map<std::string, Expected> out;
  for (const auto& r : rows) {
    out[r[0].as<std::string>()] = {r[1].is_null() ? -1 : r[1].as<int64_t>(),
                                   r[2].is_null() ? "<NULL>" : r[2].as<std::string>()};
  }
  return out;
}

TEST(ScoringSync, R15_ExampleSheetScoredOnTheWayInAndARuleChangeRepublishesExactlyTheAffectedRecords) {
  const auto base = isolated_example_config(unique_tag("scoring"));
  const auto first_yaml = with_rules(base, 20);
  const auto config = common::parse_config(first_yaml);
  IsolatedEnvironment env(config);
  const auto& source = config.sources.at(0);
  auto conn = connect(config);
  WorkerThread worker(config);
  common::KafkaProducer kafka(config.kafka);

  const auto sheet = read_sheet(source.url);
  ASSERT_EQ(sheet.size(), 10'000u);
  producers::SyncRunner first_runner(config, kafka, nullptr);
  const auto first = first_runner.run(source);
  ASSERT_EQ(first.status, "completed") << first.message;
  ASSERT_EQ(first.events_published, 10'000u);
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, first.run_id) >= 10'000; }, 90s));

  auto table = read_table(*conn, config);
  ASSERT_EQ(table.size(), sheet.size());
  int mismatches = 0;
  std::map<std::string, int> segments;
  for (const auto& [key, cells] : sheet) {
    const auto want = expected_for(cells, 20);
    ++segments[want.segment];
    if (!(table[key] == want) && ++mismatches <= 10) {
      ADD_FAILURE() << key << ": database " << table[key].priority << "/" << table[key].segment << ", expected "
                    << want.priority << "/" << want.segment;
    }
  }
  EXPECT_EQ(mismatches, 0);
  // The rules must split the sheet, or the test proves little.
  EXPECT_GT(segments["hot"], 500);
  EXPECT_GT(segments["warm"], 500);
  EXPECT_GT(segments["nurture"], 500);

  // Change one rule's points: exactly the records whose score or segment changes are published.
  const auto second_yaml = with_rules(base, 35);
  const auto second_config = common::parse_config(second_yaml);
  std::set<std::string> affected;
  for (const auto& [key, cells] : sheet) {
    if (!(expected_for(cells, 20) == expected_for(cells, 35))) affected.insert(key);
  }
  ASSERT_GT(affected.size(), 1000u);
  ASSERT_LT(affected.size(), 9000u);
  const auto before = high_watermarks(config.kafka, config.kafka.topic);
  producers::SyncRunner second_runner(second_config, kafka, nullptr);
  const auto second = second_runner.run(second_config.sources.at(0));
  ASSERT_EQ(second.status, "completed") << second.message;
  EXPECT_FALSE(second.snapshot_unchanged);  // same sheet, other rules: the snapshot hash must not skip it
  const auto after = high_watermarks(config.kafka, config.kafka.topic);
  EXPECT_EQ(sum(after) - sum(before), static_cast<int64_t>(affected.size()));
  std::set<std::string> published;
  for (const auto& m : read_messages(config.kafka, config.kafka.topic, before, after)) {
    common::ChangeEvent e;
    ASSERT_TRUE(e.ParseFromString(m.value));
    published.insert(e.key());
  }
  EXPECT_EQ(published, affected);
  ASSERT_TRUE(eventually([&] { return accounted_events(*conn, second.run_id) >= static_cast<int64_t>(affected.size()); },
                         90s));
  table = read_table(*conn, config);
  mismatches = 0;
  for (const auto& [key, cells] : sheet) {
    const auto want = expected_for(cells, 35);
    if (!(table[key] == want) && ++mismatches <= 10) {
      ADD_FAILURE() << key << " after the rule change: database " << table[key].priority << "/" << table[key].segment
                    << ", expected " << want.priority << "/" << want.segment;
    }
  }
  EXPECT_EQ(mismatches, 0);

  // Each run names its rule set; each audited score change names its run.
  {
    pqxx::work tx(*conn);
    const auto v1 = tx.exec_params1("SELECT rules_version FROM leadsync.sync_runs WHERE run_id = $1", first.run_id)[0];
    const auto v2 = tx.exec_params1("SELECT rules_version FROM leadsync.sync_runs WHERE run_id = $1", second.run_id)[0];
    ASSERT_FALSE(v1.is_null());
    ASSERT_FALSE(v2.is_null());
    EXPECT_NE(v1.as<std::string>(), v2.as<std::string>());
    EXPECT_EQ(tx.exec_params1("SELECT count(*) FROM leadsync.rule_sets WHERE entity = 'lead' AND version IN ($1, $2)",
                              v1.as<std::string>(), v2.as<std::string>())[0]
                  .as<int>(),
              2);
    const auto changed = tx.exec_params1(
        "SELECT count(DISTINCT key) FROM leadsync.field_changes WHERE field = 'priority' AND run_id = $1",
        second.run_id)[0];
    int64_t priority_changes = 0;
    for (const auto& key : affected) {
      priority_changes += expected_for(sheet.at(key), 20).priority != expected_for(sheet.at(key), 35).priority;
    }
    EXPECT_EQ(changed.as<int64_t>(), priority_changes);
  }

  // leadsyncctl score explains a record: the rules that matched and the stored score.
  std::string key;
  for (const auto& k : affected) {
    if (expected_for(sheet.at(k), 35).priority > 0) {
      key = k;
      break;
    }
  }
  ASSERT_FALSE(key.empty());
  TempDir dir;
  write_text_file(dir.file("config.yaml"), second_yaml);
  ChildProcess ctl({LEADSYNC_BINARY_DIR "/ctl/leadsyncctl", "--config", dir.file("config.yaml"), "score", "lead", key,
                    "--json"},
                   dir.file("score.json"));
  const auto status = ctl.wait_exit(60s);
  ASSERT_TRUE(status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << ctl.log_tail();
  std::ifstream in(dir.file("score.json"));
  const auto out = nlohmann::json::parse(in);
  EXPECT_EQ(out["score"]["computed"].get<int64_t>(), expected_for(sheet.at(key), 35).priority);
  EXPECT_EQ(out["score"]["stored"].get<std::string>(), std::to_string(expected_for(sheet.at(key), 35).priority));
  bool names_referral = false;
  for (const auto& m : out["score"]["matched"]) names_referral = names_referral || m["rule"] == "referral";
  EXPECT_TRUE(names_referral) << out.dump();
  ASSERT_FALSE(out["changes"].empty());
  EXPECT_EQ(out["changes"][0]["rules_version"], second_config.entities.at("lead").rules->version());
}

}  // namespace
}  // namespace leadsync::testing
