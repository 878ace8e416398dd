#include "ctl/repair.h"

#include <algorithm>
#include <chrono>

#include "common/kafka_producer.h"
#include "common/pg.h"
#include "common/runs.h"
#include "ctl/row_backup.h"

namespace leadsync::ctl {
namespace {

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Item {
  Drift::Kind kind;
  std::string key;      // the key the event carries
  std::string row_key;  // the row backed up
  common::ChangeEvent image;
  int64_t row_version = 0;
};

// Above the rows' versions and above every version the source stamped before; stored with the run,
// so that the producer's next run stamps a higher one still (RunRecord::next_version).
int64_t claim_version(pqxx::connection& conn, const std::string& source, const std::string& run_id,
                      const std::vector<Item>& items) {
  int64_t v = now_micros();
  for (const auto& i : items) v = std::max(v, i.row_version + 1);
  pqxx::work tx(conn);
  v = std::max(v, tx.exec_params1("SELECT coalesce(max(source_version), 0) + 1 FROM leadsync.sync_runs WHERE "
                                  "source = $1",
                                  source)[0]
                      .as<int64_t>());
  tx.exec_params("UPDATE leadsync.sync_runs SET source_version = $2 WHERE run_id = $1", run_id, v);
  tx.commit();
  return v;
}

}  // namespace

RepairResult repair_source(const common::Config& config, const common::SourceConfig& source,
                           const RepairOptions& options) {
  const auto& entity = config.entity(source.entity);
  RepairResult result;
  std::vector<Item> items;
  VerifyOptions vo;
  vo.keys = options.keys;
  vo.fields = options.fields;
  result.before = verify_source(config, source, vo, [&](const Drift& d) {
    // A source that never deletes (on_missing: ignore) leaves rows it no longer has alone.
    if (d.kind == Drift::Kind::kExtra && source.on_missing == common::OnMissing::kIgnore) return;
    // --fields repairs records whose values differ there; whole missing or extra records are not that.
    if (!options.fields.empty() && d.kind != Drift::Kind::kFields) return;
    items.push_back({d.kind, d.key, d.row_key.empty() ? d.key : d.row_key, d.image ? *d.image : common::ChangeEvent{},
                     d.row_version});
  });
  std::sort(items.begin(), items.end(), [](const Item& a, const Item& b) { return a.key < b.key; });
  for (const auto& i : items) {
    result.keys.push_back(i.key);
    (i.kind == Drift::Kind::kExtra ? result.deletes : result.upserts) += 1;
  }
  if (items.empty() || options.mode == RepairMode::kDryRun) return result;

  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  {
    // The run store would start a queued run instead of a new one: a repair must not take its place.
    pqxx::work tx(*conn);
    const auto queued = tx.exec_params("SELECT run_id FROM leadsync.sync_runs WHERE source = $1 AND status = 'queued'",
                                       source.name);
    if (!queued.empty()) {
      throw common::RunConflict("source " + source.name + " has a queued run (" + queued[0][0].as<std::string>() +
                                "); let it run or cancel it, then repair");
    }
  }
  common::RunStore store(*conn, common::kDefaultHeartbeatInterval);
  const auto run = store.claim(source.name, common::RunTrigger::kRepair);
  common::RunCounters counters;
  counters.rows_read = result.before.source_records;
  counters.rejected_records = result.before.rejected_records;
  try {
    result.run_id = run.run_id;
    result.version = claim_version(*conn, source.name, run.run_id, items);
    std::vector<std::string> row_keys;
    for (const auto& i : items) row_keys.push_back(i.row_key);
    result.backup_id = "backup-" + run.run_id;
    back_up_rows(*conn, config, entity, source.name, run.run_id, result.backup_id, row_keys);

    common::KafkaProducer producer(config.kafka);
    producer.warm_up(config.kafka.topic);
    std::string buffer;
    int64_t n = 0;
    for (auto& i : items) {
      auto& e = i.image;
      if (i.kind == Drift::Kind::kExtra) {
        e.Clear();
        e.set_key(i.key);
        e.set_op(leadsync::v1::OP_DELETE);
        e.set_checksum(0);
        ++counters.deleted_records;
      } else {
        ++(i.kind == Drift::Kind::kFields ? counters.changed_records : counters.new_records);
      }
      e.set_source(source.name);
      e.set_entity(entity.name);
      e.set_origin(source.name);
      e.set_run_id(run.run_id);
      e.set_source_version(result.version);
      e.set_observed_at_micros(now_micros());
      e.set_event_id(common::make_event_id(source.name, entity.name, e.key(), result.version, e.checksum()));
      e.SerializeToString(&buffer);
      producer.produce(config.kafka.topic, entity.name + "/" + e.key(), buffer);
      ++counters.events_published;
      if (++n % 1000 == 0) {
        store.heartbeat(run, {counters.events_published, static_cast<int64_t>(items.size()), std::nullopt, ""},
                        counters);
      }
    }
    while (!producer.flush(std::chrono::seconds(5))) {
    }
    if (producer.failed() > 0) {
      throw std::runtime_error("Kafka did not acknowledge every repair event (" + producer.first_error() + ")");
    }
    store.finish(run, common::RunStatus::kCompleted, counters,
                 "repair of " + std::to_string(items.size()) + " drifted record(s); backup " + result.backup_id, "");
  } catch (const std::exception& e) {
    store.finish(run, common::RunStatus::kFailed, counters, "", e.what());
    throw;
  }
  return result;
}

std::string format_repair(const RepairResult& r, RepairMode mode) {
  std::string keys;
  for (std::size_t i = 0; i < r.keys.size() && i < 20; ++i) keys += (i ? ", " : "") + r.keys[i];
  if (r.keys.size() > 20) keys += ", …";
  if (r.keys.empty()) return "repair " + r.before.source + ": nothing to repair, PostgreSQL matches the source\n";
  std::string out = "repair " + r.before.source + ": " + std::to_string(r.keys.size()) + " drifted record(s): " +
                    std::to_string(r.upserts) + " to re-publish from the source, " + std::to_string(r.deletes) +
                    " to delete (" + keys + ")\n";
  if (mode == RepairMode::kDryRun) return out + "  dry run: nothing backed up, nothing published\n";
  out += "  backup " + r.backup_id + " (undo with: leadsyncctl rollback " + r.backup_id + ")\n";
  out += "  run " + r.run_id + " (trigger repair) published " + std::to_string(r.keys.size()) +
         " event(s) at version " + std::to_string(r.version) + "; leadsyncctl wait " + r.before.source +
         " waits until they are applied\n";
  return out;
}

}  // namespace leadsync::ctl
