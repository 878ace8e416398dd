#include "ctl/plan.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <unordered_map>

#include "common/pg.h"
#include "common/runs.h"
#include "ctl/table_cursor.h"
#include "producers/mapper.h"
#include "producers/registry.h"
#include "producers/source_state.h"
#include "producers/target_stamp.h"

namespace leadsync::ctl {
namespace {

std::string percent(double fraction) {
  char out[16];
  std::snprintf(out, sizeof out, "%.3g%%", fraction * 100);
  return out;
}

// The producer's reasons to publish every record (SyncRun's full_publish_reason, minus --full).
std::string full_publish_reason(pqxx::connection& conn, const common::Config& config,
                                const common::SourceConfig& source, const common::EntityConfig& entity) {
  const auto target = producers::read_target_stamp(conn, config, entity);
  common::RunStore store(conn, config.runs.heartbeat_interval);
  const auto last = store.last_completed(source.name);
  if (!last.target_stamp.empty() && last.target_stamp != target.stamp) {
    return "the target changed since the last completed run (" + last.target_stamp + " -> " + target.stamp + ")";
  }
  if (!target.has_rows) {
    pqxx::work tx(conn);
    if (tx.exec_params1("SELECT EXISTS (SELECT 1 FROM leadsync.source_state WHERE source = $1)", source.name)[0]
            .as<bool>()) {
      return "the target table is empty while the source's state is not (truncated or restored)";
    }
  }
  return "";
}

// Which fields of each updated record differ from the row PostgreSQL has now.
void compare_updates(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity,
                     const std::string& source, const std::unordered_map<std::string, common::ChangeEvent>& updated,
                     Plan& plan, std::size_t samples) {
  if (updated.empty()) return;
  std::vector<const common::FieldConfig*> fields;
  for (const auto& f : entity.fields) fields.push_back(&f);
  std::set<std::string> keys;
  for (const auto& [k, e] : updated) keys.insert(k);
  TableCursor cursor(conn, config, entity, source, fields, keys);
  TableRow row;
  auto note = [&](const std::string& field, const std::string& key) {
    auto& d = plan.update_fields[field];
    ++d.count;
    if (d.sample_keys.size() < samples) d.sample_keys.push_back(key);
  };
  std::set<std::string> met;
  while (cursor.next(row)) {
    const auto& e = updated.at(row.key);
    met.insert(row.key);
    for (std::size_t i = 0; i < fields.size(); ++i) {
      const auto it = e.fields().find(fields[i]->name);
      if (row.deleted || it == e.fields().end() || !row.values[i] || !common::same_value(it->second, *row.values[i])) {
        note(fields[i]->name, row.key);
      }
    }
  }
  for (const auto& k : keys) {
    if (!met.count(k)) note("(no row in PostgreSQL)", k);
  }
  cursor.transaction().commit();
}

}  // namespace

Plan plan_source(const common::Config& config, const common::SourceConfig& source, std::size_t samples) {
  const auto& entity = config.entity(source.entity);
  Plan plan;
  plan.source = source.name;
  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  plan.full_publish_reason = full_publish_reason(*conn, config, source, entity);

  auto adapter = producers::make_adapter(source, std::filesystem::temp_directory_path().string());
  adapter->open();
  producers::Mapper mapper(source, entity, *adapter);
  producers::SourceState state;
  state.load(config.postgres.url, source.name);
  if (!plan.full_publish_reason.empty()) state.ignore_checksums();

  std::unordered_map<std::string, common::ChangeEvent> updated;
  producers::SourceRecord record;
  std::optional<std::string> parse_error;
  common::ChangeEvent event;
  producers::RowError row_error;
  int64_t valid = 0, unreadable = 0;
  while (adapter->next(record, parse_error)) {
    if (producers::Mapper::is_blank(record)) continue;
    ++plan.rows_read;
    if (parse_error) {
      ++plan.rejected;
      ++unreadable;
      state.keep_any_of(record.cells);
      continue;
    }
    if (!mapper.map(record, event, row_error)) {
      ++plan.rejected;
      state.keep(row_error.key);
      continue;
    }
    std::size_t first_line = 0;
    switch (state.observe(event.key(), event.checksum(), record.position, first_line)) {
      case producers::SourceState::Seen::kDuplicate: ++plan.rejected; continue;
      case producers::SourceState::Seen::kUnchanged: ++plan.unchanged; ++valid; continue;
      case producers::SourceState::Seen::kChanged:
        plan.update_keys.push_back(event.key());
        updated.emplace(event.key(), event);
        break;
      case producers::SourceState::Seen::kNew: plan.insert_keys.push_back(event.key()); break;
    }
    ++valid;
  }
  plan.inserts = static_cast<int64_t>(plan.insert_keys.size());
  plan.updates = static_cast<int64_t>(plan.update_keys.size());

  // The guardrails, as SyncRun::publish_deletes applies them.
  auto gone = state.vanished();
  if (!gone.empty()) {
    const auto n = std::to_string(gone.size());
    if (valid == 0 && !source.allow_empty) {
      plan.run_fails = true;
      plan.guardrail = "the source has no valid records; the run would refuse to delete the " + n +
                       " records synced before (allow_empty is false)";
    } else if (valid > 0 && source.on_missing != common::OnMissing::kIgnore) {
      const double fraction = static_cast<double>(gone.size()) / static_cast<double>(std::max<std::size_t>(state.known(), 1));
      if (unreadable > 0) {
        plan.guardrail = n + " record(s) are missing, but none would be deleted: " + std::to_string(unreadable) +
                         " row(s) could not be parsed";
      } else if (fraction > source.max_delete_fraction && !source.allow_mass_delete) {
        plan.run_fails = true;
        plan.guardrail = "the run would fail: it would delete " + n + " of the " + std::to_string(state.known()) +
                         " records synced before (" + percent(fraction) + ", more than max_delete_fraction " +
                         percent(source.max_delete_fraction) + "); leadsync-producer --allow-mass-delete allows it";
      } else {
        plan.delete_keys = std::move(gone);
      }
    }
  }
  plan.deletes = static_cast<int64_t>(plan.delete_keys.size());
  for (auto* keys : {&plan.insert_keys, &plan.update_keys, &plan.delete_keys}) std::sort(keys->begin(), keys->end());
  compare_updates(*conn, config, entity, source.name, updated, plan, samples);
  return plan;
}

std::string format_plan(const Plan& p, std::size_t samples) {
  auto some = [&](const std::vector<std::string>& keys) {
    std::string s;
    for (std::size_t i = 0; i < keys.size() && i < samples; ++i) s += (i ? ", " : "") + keys[i];
    return keys.empty() ? s : " (e.g. " + s + ")";
  };
  std::string out = "plan " + p.source + ": the next run reads " + std::to_string(p.rows_read) + " rows\n";
  if (!p.full_publish_reason.empty()) out += "  every record is published: " + p.full_publish_reason + "\n";
  out += "  insert: " + std::to_string(p.inserts) + some(p.insert_keys) + "\n";
  out += "  update: " + std::to_string(p.updates) + some(p.update_keys) + "\n";
  for (const auto& [field, d] : p.update_fields) {
    out += "    field " + field + ": " + std::to_string(d.count) + some(d.sample_keys) + "\n";
  }
  out += "  delete: " + std::to_string(p.deletes) + some(p.delete_keys) + "\n";
  out += "  unchanged: " + std::to_string(p.unchanged) + ", rejected: " + std::to_string(p.rejected) + "\n";
  out += "  guardrail: " + (p.guardrail.empty() ? std::string("none triggered") : p.guardrail) + "\n";
  out += "  dry run: nothing was published, no state was changed\n";
  return out;
}

std::string plan_json(const Plan& p, std::size_t samples) {
  auto head = [&](const std::vector<std::string>& keys) {
    return std::vector<std::string>(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(std::min(samples, keys.size())));
  };
  nlohmann::json fields = nlohmann::json::object();
  for (const auto& [name, d] : p.update_fields) fields[name] = {{"count", d.count}, {"sample_keys", d.sample_keys}};
  return nlohmann::json{{"source", p.source},
                        {"rows_read", p.rows_read},
                        {"full_publish_reason", p.full_publish_reason},
                        {"insert", {{"count", p.inserts}, {"sample_keys", head(p.insert_keys)}}},
                        {"update", {{"count", p.updates}, {"sample_keys", head(p.update_keys)}, {"fields", fields}}},
                        {"delete", {{"count", p.deletes}, {"sample_keys", head(p.delete_keys)}}},
                        {"unchanged", p.unchanged},
                        {"rejected", p.rejected},
                        {"guardrail", p.guardrail},
                        {"run_fails", p.run_fails}}
      .dump();
}

}  // namespace leadsync::ctl
