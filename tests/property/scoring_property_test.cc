// R15 — properties of scoring through the producer's real path (CSV adapter → Mapper, which applies
// the entity's rules before the checksum), for generated rule sets and sheets:
//  - a record's score and segment do not depend on the order in which the records are read;
//  - the score equals the sum of the points of the rules that match it, within [floor, cap], where
//    "match" is decided by an oracle written here from the raw cells, not by the rule engine.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include "common/config.h"
#include "common/scoring.h"
#include "producers/mapper.h"
#include "producers/registry.h"

namespace leadsync::producers {
namespace {

namespace fs = std::filesystem;

struct Row {
  std::string key, status, company, tags;
  std::optional<int> employees;
};

// One generated condition: its YAML and the oracle's verdict on a raw row.
struct Cond {
  std::string yaml;
  std::function<bool(const Row&)> holds;
};

std::string lower_trim(std::string s) {
  while (!s.empty() && s.front() == ' ') s.erase(s.begin());
  while (!s.empty() && s.back() == ' ') s.pop_back();
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::vector<std::string> split_tags(const std::string& cell) {
  std::vector<std::string> out;
  std::string item;
  for (const char c : cell + ",") {
    if (c == ',') {
      item = lower_trim(item);
      if (!item.empty()) out.push_back(item);
      item.clear();
    } else {
      item += c;
    }
  }
  return out;
}

const std::vector<std::string> kStatuses = {"new", "won", "lost", "open"};
const std::vector<std::string> kTags = {"referral", "webinar", "ads"};

rc::Gen<Cond> leaf() {
  return rc::gen::oneOf(
      rc::gen::map(rc::gen::inRange(0, 500),
                   [](int k) {
                     return Cond{"{field: employees, gte: " + std::to_string(k) + "}",
                                 [k](const Row& r) { return r.employees && *r.employees >= k; }};
                   }),
      rc::gen::map(rc::gen::inRange(0, 500),
                   [](int k) {
                     return Cond{"{field: employees, lt: " + std::to_string(k) + "}",
                                 [k](const Row& r) { return r.employees && *r.employees < k; }};
                   }),
      rc::gen::map(rc::gen::elementOf(kStatuses),
                   [](const std::string& s) {
                     return Cond{"{field: status, equals: " + s + "}",
                                 [s](const Row& r) { return lower_trim(r.status) == s; }};
                   }),
      rc::gen::map(rc::gen::pair(rc::gen::elementOf(kStatuses), rc::gen::elementOf(kStatuses)),
                   [](const std::pair<std::string, std::string>& p) {
                     return Cond{"{field: status, in: [" + p.first + ", " + p.second + "]}", [p](const Row& r) {
                                   const auto s = lower_trim(r.status);
                                   return s == p.first || s == p.second;
                                 }};
                   }),
      rc::gen::map(rc::gen::elementOf(kTags),
                   [](const std::string& t) {
                     return Cond{"{field: tags, contains: " + t + "}", [t](const Row& r) {
                                   const auto items = split_tags(r.tags);
                                   return std::find(items.begin(), items.end(), t) != items.end();
                                 }};
                   }),
      rc::gen::just(Cond{"{field: status, exists: false}", [](const Row& r) { return lower_trim(r.status).empty(); }}),
      rc::gen::just(Cond{"{field: company, matches: '^a'}",
                         [](const Row& r) { return !r.company.empty() && r.company[0] == 'a'; }}));
}

rc::Gen<Cond> condition() {
  return rc::gen::oneOf(
      leaf(), rc::gen::map(leaf(), [](const Cond& c) {
        return Cond{"{not: " + c.yaml + "}", [c](const Row& r) { return !c.holds(r); }};
      }),
      rc::gen::map(rc::gen::pair(leaf(), leaf()), [](const std::pair<Cond, Cond>& p) {
        return Cond{"{any: [" + p.first.yaml + ", " + p.second.yaml + "]}",
                    [p](const Row& r) { return p.first.holds(r) || p.second.holds(r); }};
      }),
      rc::gen::map(rc::gen::pair(leaf(), leaf()), [](const std::pair<Cond, Cond>& p) {
        return Cond{"{all: [" + p.first.yaml + ", " + p.second.yaml + "]}",
                    [p](const Row& r) { return p.first.holds(r) && p.second.holds(r); }};
      }));
}

rc::Gen<Row> row() {
  return rc::gen::build<Row>(
      rc::gen::set(&Row::status,
                   rc::gen::elementOf(std::vector<std::string>{"new", " Won ", "LOST", "open", "", "other"})),
      rc::gen::set(&Row::company, rc::gen::elementOf(std::vector<std::string>{"acme", "Acme", "beta", "", "alpha"})),
      rc::gen::set(&Row::tags, rc::gen::elementOf(std::vector<std::string>{"", "referral", "Webinar, ads",
                                                                             "ads,referral", " referral ,x"})),
      rc::gen::set(&Row::employees, rc::gen::map(rc::gen::maybe(rc::gen::inRange(0, 600)), [](const rc::Maybe<int>& m) {
                     return m ? std::optional<int>(*m) : std::nullopt;
                   })));
}

struct Scratch {
  fs::path dir;
  Scratch() {
    std::string t = (fs::temp_directory_path() / "scoring_property_XXXXXX").string();
    dir = ::mkdtemp(t.data());
  }
  ~Scratch() { fs::remove_all(dir); }
};

std::string csv_cell(const std::string& s) { return "\"" + s + "\""; }

// Scores by key, read through the CSV adapter and the Mapper from a sheet of `rows` in this order.
std::map<std::string, std::pair<int64_t, std::string>> score_sheet(const common::Config& config, const fs::path& path,
                                                                   const std::vector<Row>& rows) {
  {
    std::ofstream out(path);
    out << "id,status,company,tags,employees\n";
    for (const auto& r : rows) {
      out << r.key << "," << csv_cell(r.status) << "," << csv_cell(r.company) << "," << csv_cell(r.tags) << ","
          << (r.employees ? std::to_string(*r.employees) : "") << "\n";
    }
  }
  auto source = config.sources.front();
  source.url = path.string();
  const auto& entity = config.entities.at("lead");
  auto adapter = make_adapter(source, path.parent_path().string());
  adapter->open();
  Mapper mapper(source, entity, *adapter);
  mapper.set_clock(1'780'000'000'000'000);
  std::map<std::string, std::pair<int64_t, std::string>> out;
  SourceRecord record;
  std::optional<std::string> parse_error;
  common::ChangeEvent event;
  RowError error;
  while (adapter->next(record, parse_error)) {
    RC_ASSERT(!parse_error);
    RC_ASSERT(mapper.map(record, event, error));
    const auto& f = event.fields();
    out[event.key()] = {f.at("priority").int_value(),
                        f.at("segment").kind_case() == common::Value::kStringValue ? f.at("segment").string_value() : ""};
  }
  return out;
}

RC_GTEST_PROP(ScoringProperty, R15_ScoreIsTheClampedSumOfMatchedRulesWhateverTheReadOrder, ()) {
  const auto conds = *rc::gen::container<std::vector<Cond>>(*rc::gen::inRange(1, 7), condition());
  std::vector<int> points;
  for (std::size_t i = 0; i < conds.size(); ++i) points.push_back(*rc::gen::inRange(-30, 60));
  const auto floor = *rc::gen::maybe(rc::gen::inRange(-20, 20));
  const auto cap = *rc::gen::maybe(rc::gen::inRange(20, 120));
  auto rows = *rc::gen::container<std::vector<Row>>(*rc::gen::inRange(1, 40), row());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i].key = "k" + std::to_string(i);

  std::string yaml = R"(
entities:
  lead:
    key: id
    fields:
      status: {type: text, normalize: lower_trim}
      company: {type: text}
      tags: {type: text_list, normalize: lower_trim}
      employees: {type: int}
      priority: {type: int, role: rules}
      segment: {type: text, role: rules}
    scoring:
      field: priority
)";
  if (floor) yaml += "      floor: " + std::to_string(*floor) + "\n";
  if (cap) yaml += "      cap: " + std::to_string(*cap) + "\n";
  yaml += "      rules:\n";
  for (std::size_t i = 0; i < conds.size(); ++i) {
    yaml += "        - {name: r" + std::to_string(i) + ", points: " + std::to_string(points[i]) +
            ", when: " + conds[i].yaml + "}\n";
  }
  yaml += R"(    segments:
      field: segment
      default: low
      rules:
        - {name: high, when: {field: priority, gte: 40}}
sources:
  - {name: s, kind: csv, entity: lead, url: /dev/null, key_column: id,
     columns: {id: id, status: status, company: company, tags: tags, employees: employees}}
)";
  const auto config = common::parse_config(yaml);
  Scratch scratch;
  const auto in_order = score_sheet(config, scratch.dir / "a.csv", rows);
  auto shuffled = rows;
  std::mt19937 rng(*rc::gen::arbitrary<uint32_t>());
  std::shuffle(shuffled.begin(), shuffled.end(), rng);
  const auto reordered = score_sheet(config, scratch.dir / "b.csv", shuffled);
  RC_ASSERT(in_order == reordered);
  RC_ASSERT(in_order.size() == rows.size());
  for (const auto& r : rows) {
    int64_t expected = 0;
    for (std::size_t i = 0; i < conds.size(); ++i) {
      if (conds[i].holds(r)) expected += points[i];
    }
    if (floor) expected = std::max<int64_t>(expected, *floor);
    if (cap) expected = std::min<int64_t>(expected, *cap);
    RC_ASSERT(in_order.at(r.key).first == expected);
    RC_ASSERT(in_order.at(r.key).second == (expected >= 40 ? "high" : "low"));
  }
}

}  // namespace
}  // namespace leadsync::producers
