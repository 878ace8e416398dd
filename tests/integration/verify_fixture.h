// Shared by the verify/repair tests and their rapidcheck property: a synced lead sheet, ways to
// corrupt its table behind leadsync's back, and what verify reported, as key sets.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bench/gen/lead_data.h"
#include "common/csv.h"
#include "ctl/verify.h"
#include "producers/sync_run.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {

using Keys = std::set<std::string>;
using FieldKeys = std::set<std::pair<std::string, std::string>>;  // (key, field)

inline constexpr int64_t kRows = 300;
inline constexpr uint64_t kSeed = 11;

// What a test did to the table.
struct Corruption {
  FieldKeys fields;   // a field's value changed
  Keys missing;       // the row deleted outright
  Keys deleted;       // the row made a tombstone
  Keys extra;         // a live row of this source that the sheet does not have

  std::map<std::string, Keys> fields_by_name() const {
    std::map<std::string, Keys> out;
    for (const auto& [key, field] : fields) out[field].insert(key);
    return out;
  }
  Keys record_keys() const {  // records of the sheet that drifted
    Keys out = missing;
    out.insert(deleted.begin(), deleted.end());
    for (const auto& kf : fields) out.insert(kf.first);
    return out;
  }
};

// verify's findings, collected through its DriftVisitor.
struct Found {
  FieldKeys fields;
  Keys missing, deleted, extra;
  ctl::DriftVisitor visitor() {
    return [this](const ctl::Drift& d) {
      switch (d.kind) {
        case ctl::Drift::Kind::kFields:
          for (const auto& f : d.fields) fields.insert({d.key, f});
          break;
        case ctl::Drift::Kind::kMissing: missing.insert(d.key); break;
        case ctl::Drift::Kind::kDeleted: deleted.insert(d.key); break;
        case ctl::Drift::Kind::kExtra: extra.insert(d.key); break;
      }
    };
  }
};

class VerifyRepair : public ::testing::Test {
 protected:
  void SetUp() override {
    write_sheet(sheet_rows());
    ASSERT_NO_FATAL_FAILURE(sync());
    const auto report = ctl::verify_source(config_, source());
    ASSERT_FALSE(report.drift()) << ctl::format_report(report);
    ASSERT_EQ(report.matching, kRows);
  }

  static common::Config make_config(const TempDir& dir) {
    auto config = isolated_example_config(unique_tag("r7_verify"));
    config.sources.at(0).url = dir.file("leads.csv");
    return config;
  }
  const common::SourceConfig& source() const { return config_.sources.at(0); }
  std::string table() const { return common::qualified(*conn_, config_.postgres.schema, "leads"); }

  static std::vector<std::vector<std::string>> sheet_rows() {
    std::vector<std::vector<std::string>> rows;
    for (int64_t i = 0; i < kRows; ++i) rows.push_back(bench::make_lead_row(kSeed, static_cast<uint64_t>(i)));
    return rows;
  }
  void write_sheet(const std::vector<std::vector<std::string>>& rows) const {
    std::ofstream out(source().url, std::ios::binary | std::ios::trunc);
    common::write_csv_row(out, bench::lead_header());
    for (const auto& r : rows) common::write_csv_row(out, r);
    ASSERT_TRUE(out.good());
  }
  static std::string key(int64_t index) { return bench::format_lead_id(static_cast<uint64_t>(index) + 1); }

  // Runs the source once and waits until the worker accounted for every event.
  void sync() {
    const auto report = runner_.run(source());
    ASSERT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
    wait_applied(report.run_id, static_cast<int64_t>(report.events_published));
  }
  void wait_applied(const std::string& run_id, int64_t events) {
    ASSERT_TRUE(eventually([&] { return accounted_events(*conn_, run_id) >= events; }, std::chrono::seconds(60)))
        << "the worker accounted for " << accounted_events(*conn_, run_id) << " of " << events << " events of run "
        << run_id;
  }

  // Changes the table behind leadsync's back. Every change makes the value differ from the sheet.
  void corrupt(const Corruption& c) {
    pqxx::work tx(*conn_);
    for (const auto& [k, field] : c.fields) {
      const auto f = tx.quote_name(field);
      std::string value;
      switch (config_.entity("lead").field(field)->type) {
        case common::FieldType::kInt: value = "coalesce(" + f + ", 0) + 1000"; break;
        case common::FieldType::kTimestamp: value = "coalesce(" + f + ", now()) - interval '1 day 1 second'"; break;
        case common::FieldType::kTextList: value = "array_append(coalesce(" + f + ", '{}'), 'corrupt')"; break;
        default: value = "coalesce(" + f + ", '') || ' (corrupt)'"; break;
      }
      tx.exec_params("UPDATE " + table() + " SET " + f + " = " + value + " WHERE lead_id = $1", k);
    }
    for (const auto& k : c.missing) tx.exec_params("DELETE FROM " + table() + " WHERE lead_id = $1", k);
    for (const auto& k : c.deleted) tx.exec_params("UPDATE " + table() + " SET _deleted = true WHERE lead_id = $1", k);
    for (const auto& k : c.extra) {
      tx.exec_params("INSERT INTO " + table() +
                         " (lead_id, email, first_name, _version, _source, _origin) VALUES ($1, $2, 'Extra', 1, $3, $3)",
                     k, k + "@example.com", source().name);
    }
    tx.commit();
  }

  Corruption plant_standard_corruption() {
    Corruption c;
    c.fields = {{key(2), "score"}, {key(2), "notes"}, {key(9), "email"}, {key(19), "status"},
                {key(19), "assignee"}, {key(19), "lead_sources"}, {key(25), "created_at"}, {key(150), "phone"}};
    c.missing = {key(29), key(30)};
    c.deleted = {key(40)};
    c.extra = {"X-EXTRA-1"};
    corrupt(c);
    return c;
  }

  // Every column of the rows with these keys as text, for byte-for-byte comparisons.
  std::map<std::string, std::vector<std::string>> snapshot(const Keys& keys) {
    pqxx::work tx(*conn_);
    std::map<std::string, std::vector<std::string>> out;
    std::string cols = "lead_id";
    for (const auto& f : config_.entity("lead").fields) cols += ", " + tx.quote_name(f.name) + "::text";
    cols += ", _deleted::text";
    for (const auto& k : keys) {
      const auto r = tx.exec_params("SELECT " + cols + " FROM " + table() + " WHERE lead_id = $1", k);
      if (r.empty()) continue;
      auto& row = out[k];
      for (const auto& f : r[0]) row.push_back(f.is_null() ? "<NULL>" : f.c_str());
    }
    return out;
  }

  std::map<std::string, int64_t> versions() {
    pqxx::work tx(*conn_);
    std::map<std::string, int64_t> out;
    for (const auto& r : tx.exec("SELECT lead_id, _version FROM " + table())) out[r[0].c_str()] = r[1].as<int64_t>();
    return out;
  }
  int64_t runs_of_source() {
    pqxx::work tx(*conn_);
    return tx.exec_params1("SELECT count(*) FROM leadsync.sync_runs WHERE source = $1", source().name)[0].as<int64_t>();
  }

  // Declaration order is construction order: the sheet's directory and the config first, the
  // environment (schema, topics) before the worker; destruction stops the worker first.
  TempDir dir_;
  const common::Config config_ = make_config(dir_);
  IsolatedEnvironment env_{config_};
  WorkerThread worker_{config_};
  common::KafkaProducer kafka_{config_.kafka};
  producers::SyncRunner runner_{config_, kafka_, nullptr};
  std::unique_ptr<pqxx::connection> conn_ = connect(config_);
};

}  // namespace leadsync::testing
