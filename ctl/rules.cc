#include "ctl/rules.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>

#include "common/errors.h"
#include "common/mapping.h"
#include "common/pg.h"
#include "common/scoring.h"
#include "producers/mapper.h"
#include "producers/registry.h"

namespace leadsync::ctl {
namespace {

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const common::EntityConfig& entity_with_rules(const common::Config& config, const std::string& name) {
  const auto it = config.entities.find(name);
  if (it == config.entities.end()) throw common::ConfigError("no entity named '" + name + "'");
  if (!it->second.rules) throw common::ConfigError("entity '" + name + "' has no scoring or segments");
  return it->second;
}

std::string shown(const common::Value* v) { return v ? common::describe_value(*v) : "NULL"; }

int cmd_score(const common::Config& config, const std::string& entity_name, const std::string& key, bool json) {
  const auto& entity = entity_with_rules(config, entity_name);
  const auto& rules = *entity.rules;
  auto conn = common::pg_connect(config.postgres, "leadsyncctl");
  pqxx::work tx(*conn);
  tx.exec("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO'");
  std::string columns;
  for (const auto& f : entity.fields) columns += ", " + tx.quote_name(f.name) + "::text";
  const auto table = tx.quote_name(config.postgres.schema) + "." + tx.quote_name(entity.table);
  const auto rows = tx.exec_params("SELECT _deleted, _version" + columns + " FROM " + table + " WHERE " +
                                       tx.quote_name(entity.key) + " = $1",
                                   key);
  if (rows.empty()) throw std::runtime_error(entity_name + " '" + key + "' is not in " + entity.table);
  common::FieldMap fields;
  for (std::size_t i = 0; i < entity.fields.size(); ++i) {
    const auto cell = rows[0][static_cast<int>(i + 2)];
    if (cell.is_null()) continue;
    if (auto v = common::value_from_sql_text(entity.fields[i], cell.c_str())) fields[entity.fields[i].name] = *v;
  }
  const auto why = rules.explain(fields, now_micros());
  // The audited changes of the computed fields, with the rules of the run that published them.
  const auto history = tx.exec_params(
      "SELECT to_char(c.at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), c.field, coalesce(c.old_value, 'NULL'), "
      "coalesce(c.new_value, 'NULL'), coalesce(c.source, ''), coalesce(r.rules_version, '') "
      "FROM leadsync.field_changes c LEFT JOIN leadsync.sync_runs r ON r.run_id = c.run_id "
      "WHERE c.entity = $1 AND c.key = $2 AND c.field IN ($3, $4) ORDER BY c.at DESC, c.id DESC LIMIT 10",
      entity_name, key, rules.score_field(), rules.segment_field());
  auto stored = [&](const std::string& field) -> const common::Value* {
    const auto it = fields.find(field);
    return field.empty() || it == fields.end() ? nullptr : &it->second;
  };
  if (json) {
    nlohmann::json out = {{"entity", entity_name}, {"key", key}, {"rules_version", rules.version()},
                          {"deleted", rows[0][0].as<bool>()}};
    if (why.score) {
      out["score"] = {{"field", rules.score_field()}, {"stored", shown(stored(rules.score_field()))},
                      {"computed", *why.score}, {"sum_of_points", why.raw_score}, {"matched", nlohmann::json::array()}};
      for (const auto& m : why.matched) out["score"]["matched"].push_back({{"rule", m.rule}, {"points", m.points}});
    }
    if (!rules.segment_field().empty()) {
      out["segment"] = {{"field", rules.segment_field()}, {"stored", shown(stored(rules.segment_field()))},
                        {"computed", why.segment ? nlohmann::json(*why.segment) : nlohmann::json()},
                        {"rule", why.segment_rule}};
    }
    out["changes"] = nlohmann::json::array();
    for (const auto& h : history) {
      out["changes"].push_back({{"at", h[0].c_str()}, {"field", h[1].c_str()}, {"old", h[2].c_str()},
                                {"new", h[3].c_str()}, {"source", h[4].c_str()}, {"rules_version", h[5].c_str()}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << entity_name << " '" << key << "'" << (rows[0][0].as<bool>() ? " (deleted)" : "") << ", rules "
            << rules.version() << "\n";
  if (why.score) {
    std::cout << "  " << rules.score_field() << ": stored " << shown(stored(rules.score_field())) << ", computed now "
              << *why.score << " (sum of points " << why.raw_score << ")\n";
    for (const auto& m : why.matched) std::printf("    %+6lld  %s\n", static_cast<long long>(m.points), m.rule.c_str());
    if (why.matched.empty()) std::cout << "    no rule matched\n";
  }
  if (!rules.segment_field().empty()) {
    std::cout << "  " << rules.segment_field() << ": stored " << shown(stored(rules.segment_field()))
              << ", computed now " << (why.segment ? *why.segment : "NULL")
              << (why.segment_rule.empty() ? " (the default)" : " (rule '" + why.segment_rule + "')") << "\n";
  }
  if (!history.empty()) std::cout << "  changes (audit, newest first):\n";
  for (const auto& h : history) {
    std::cout << "    " << h[0].c_str() << "  " << h[1].c_str() << ": " << h[2].c_str() << " -> " << h[3].c_str()
              << "  (source " << h[4].c_str() << ", rules " << (h[5].is_null() || !*h[5].c_str() ? "?" : h[5].c_str())
              << ")\n";
  }
  return 0;
}

struct Distribution {
  int64_t records = 0, rejected = 0;
  std::vector<int64_t> scores;
  std::map<std::string, int64_t> rule_matches;  // by rule name
  std::map<std::string, int64_t> segments;      // by segment ("" = null)
};

int64_t percentile(const std::vector<int64_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<std::size_t>(p * static_cast<double>(sorted.size())))];
}

int cmd_rules_test(const common::Config& config, const std::string& entity_name, const std::string& source_name,
                   int sample, bool json) {
  const auto& entity = entity_with_rules(config, entity_name);
  const common::SourceConfig* source = nullptr;
  for (const auto& s : config.sources) {
    if (s.entity == entity_name && (source_name.empty() || s.name == source_name)) {
      source = &s;
      break;
    }
  }
  if (!source) {
    throw common::ConfigError(source_name.empty() ? "no source feeds entity '" + entity_name + "'"
                                                  : "no source '" + source_name + "' feeds entity '" + entity_name + "'");
  }
  auto adapter = producers::make_adapter(*source, std::filesystem::temp_directory_path().string());
  adapter->open();
  producers::Mapper mapper(*source, entity, *adapter);
  const auto now = now_micros();
  mapper.set_clock(now);
  Distribution d;
  producers::SourceRecord record;
  std::optional<std::string> parse_error;
  common::ChangeEvent event;
  producers::RowError error;
  while (d.records < sample && adapter->next(record, parse_error)) {
    if (producers::Mapper::is_blank(record)) continue;
    if (parse_error || !mapper.map(record, event, error)) {
      ++d.rejected;
      continue;
    }
    ++d.records;
    const auto why = entity.rules->explain(event.fields(), now);
    if (why.score) d.scores.push_back(*why.score);
    for (const auto& m : why.matched) ++d.rule_matches[m.rule];
    if (!entity.rules->segment_field().empty()) ++d.segments[why.segment.value_or("")];
  }
  std::sort(d.scores.begin(), d.scores.end());
  double mean = 0;
  for (const auto s : d.scores) mean += static_cast<double>(s);
  if (!d.scores.empty()) mean /= static_cast<double>(d.scores.size());
  if (json) {
    nlohmann::json out = {{"entity", entity_name}, {"source", source->name}, {"rules_version", entity.rules->version()},
                          {"records", d.records}, {"rejected", d.rejected}, {"rules", d.rule_matches},
                          {"segments", d.segments}};
    if (!d.scores.empty()) {
      out["score"] = {{"min", d.scores.front()}, {"p25", percentile(d.scores, 0.25)}, {"median", percentile(d.scores, 0.5)},
                      {"p75", percentile(d.scores, 0.75)}, {"p90", percentile(d.scores, 0.9)},
                      {"max", d.scores.back()}, {"mean", mean}};
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "rules " << entity.rules->version() << " of entity " << entity_name << " on " << d.records
            << " record(s) of source " << source->name << " (" << d.rejected
            << " rejected by the mapping); nothing published\n";
  if (!d.scores.empty()) {
    std::printf("%s: min %lld  p25 %lld  median %lld  p75 %lld  p90 %lld  max %lld  mean %.1f\n",
                entity.rules->score_field().c_str(), static_cast<long long>(d.scores.front()),
                static_cast<long long>(percentile(d.scores, 0.25)), static_cast<long long>(percentile(d.scores, 0.5)),
                static_cast<long long>(percentile(d.scores, 0.75)), static_cast<long long>(percentile(d.scores, 0.9)),
                static_cast<long long>(d.scores.back()), mean);
    std::map<int64_t, int64_t> histogram;
    for (const auto s : d.scores) ++histogram[s];
    std::cout << "  score  records\n";
    for (const auto& [score, count] : histogram) {
      std::printf("  %5lld  %lld\n", static_cast<long long>(score), static_cast<long long>(count));
    }
    std::cout << "rule                           matched\n";
    for (const auto& rule : entity.rules->score_rule_names()) {
      const auto it = d.rule_matches.find(rule);
      std::printf("  %-30s %lld\n", rule.c_str(), static_cast<long long>(it == d.rule_matches.end() ? 0 : it->second));
    }
  }
  if (!d.segments.empty()) std::cout << entity.rules->segment_field() << ":\n";
  for (const auto& [segment, count] : d.segments) {
    std::printf("  %-30s %lld\n", segment.empty() ? "NULL" : segment.c_str(), static_cast<long long>(count));
  }
  return 0;
}

}  // namespace

RuleCommands::RuleCommands(CLI::App& app) {
  score_ = app.add_subcommand("score", "explain a record's score and segment: the rules that matched, and its history");
  score_->add_option("entity", entity_, "entity name")->required();
  score_->add_option("key", key_, "the record's key")->required();
  score_->add_flag("--json", json_, "one JSON object");
  auto* rules = app.add_subcommand("rules", "scoring and segment rules");
  rules->require_subcommand(1);
  test_ = rules->add_subcommand("test", "apply the rules to records of the entity's source; publishes nothing");
  test_->add_option("entity", entity_, "entity name")->required();
  test_->add_option("--sample", sample_, "how many records (default 1000)")->check(CLI::PositiveNumber);
  test_->add_option("--source", source_, "which source of the entity (default: the first)");
  test_->add_flag("--json", json_, "one JSON object");
}

std::optional<int> RuleCommands::dispatch(const common::Config& config) {
  if (*score_) return cmd_score(config, entity_, key_, json_);
  if (*test_) return cmd_rules_test(config, entity_, source_, sample_, json_);
  return std::nullopt;
}

}  // namespace leadsync::ctl
