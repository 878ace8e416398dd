// The figure of issue 8 (not a test of a target; label `long`, so ./dev/test skips it): the sync time
// of 100,000 Firestore documents from the emulator beside the CSV adapter's time for the same rows.
// Each run is one producer run with --full (read, map, checksum, publish to the real broker, wait for
// every acknowledgement): the part of a sync where the two adapters differ; the workers' apply is the
// same code for both and is not running here. Medians of 3, printed as one line per adapter.
//
//   ./dev/test --all -R FirestoreBench          (LEADSYNC_FS_BENCH_DOCS=N for another size)
//
// Creating the documents is not measured: they are written in :commit batches of 500 before the runs.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>

#include "producers/sync_run.h"
#include "tests/integration/cluster.h"
#include "tests/integration/firestore_support.h"

namespace leadsync::testing {
namespace {

using nlohmann::json;

int documents() {
  const char* n = std::getenv("LEADSYNC_FS_BENCH_DOCS");
  return n ? std::atoi(n) : 100'000;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

TEST(FirestoreBench, SyncTimeOfFirestoreDocumentsBesideTheCsvAdaptersForTheSameRows) {
  const int n = documents();
  const auto tag = unique_tag("fsbench");
  FirestoreEmulator fs(project_id(tag));
  ASSERT_TRUE(fs.available()) << "FIRESTORE_EMULATOR_HOST is not set: start the local cluster (dev/cluster up)";

  auto config = isolated_example_config(tag);
  auto& lead = config.entities.at("lead");
  // The example's lead entity, from documents shaped like an admin UI's.
  const std::vector<std::pair<std::string, std::string>> columns = {
      {"__name__", "lead_id"},   {"firstName", "first_name"}, {"lastName", "last_name"},
      {"email", "email"},        {"phone", "phone"},          {"company", "company"},
      {"status", "status"},      {"assignee", "assignee"},    {"leadSources", "lead_sources"},
      {"score", "score"},        {"createdAt", "created_at"}, {"updatedAt", "updated_at"},
      {"notes", "notes"}};
  ASSERT_EQ(lead.fields.size() + 1, columns.size());

  TempDir dir;
  const auto csv_path = dir.file("same-rows.csv");
  std::ofstream csv(csv_path, std::ios::binary);
  for (std::size_t i = 0; i < columns.size(); ++i) csv << (i ? "," : "") << columns[i].first;
  csv << "\n";
  std::vector<std::pair<std::string, json>> docs;
  docs.reserve(n);
  for (int i = 0; i < n; ++i) {
    char id[16], stamp[32];
    std::snprintf(id, sizeof id, "L%06d", i);
    std::snprintf(stamp, sizeof stamp, "2026-02-%02dT%02d:%02d:00Z", 1 + i % 28, i % 24, i % 60);
    const std::string email = "lead" + std::to_string(i) + "@example.com";
    const std::string sources = i % 3 ? "web" : "aimedici";
    docs.emplace_back("leads/" + std::string(id),
                      json{{"firstName", fs_string("First" + std::to_string(i))},
                           {"lastName", fs_string("Last" + std::to_string(i % 997))},
                           {"email", fs_string(email)},
                           {"phone", fs_string("+39 02 " + std::to_string(1000000 + i))},
                           {"company", fs_string("Company " + std::to_string(i % 1000))},
                           {"status", fs_string(i % 2 ? "new" : "qualified")},
                           {"assignee", fs_string("agent" + std::to_string(i % 40) + "@example.com")},
                           {"leadSources", fs_strings({sources})},
                           {"score", {{"integerValue", std::to_string(i % 100)}}},
                           {"createdAt", fs_timestamp(stamp)},
                           {"updatedAt", fs_timestamp(stamp)},
                           {"notes", fs_string("note " + std::to_string(i))}});
    csv << id << ",First" << i << ",Last" << i % 997 << "," << email << ",+39 02 " << 1000000 + i << ",Company "
        << i % 1000 << "," << (i % 2 ? "new" : "qualified") << ",agent" << i % 40 << "@example.com," << sources << ","
        << i % 100 << "," << stamp << "," << stamp << ",note " << i << "\n";
  }
  csv.close();
  const auto created = std::chrono::steady_clock::now();
  fs.set(docs);
  std::printf("created %d documents in the emulator in %.1f s (not measured below)\n", n,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - created).count());

  auto firestore_source = fs.source(config.sources.at(0).name + "-fs", "lead", "leads", columns);
  std::get<common::FirestoreSettings>(firestore_source.settings).page_size = 10'000;
  auto csv_source = config.sources.at(0);
  csv_source.url = csv_path;
  csv_source.key_column = "__name__";  // the same header names as the documents' fields
  csv_source.columns = columns;
  config.sources = {csv_source, firestore_source};

  IsolatedEnvironment env(config);
  common::KafkaProducer kafka(config.kafka);
  producers::SyncRunner runner(config, kafka, nullptr, {.state = producers::StateUse::kFull});
  std::map<std::string, std::vector<double>> seconds;
  for (int round = 0; round < 3; ++round) {
    for (const auto& source : config.sources) {
      const auto report = runner.run(source);
      ASSERT_EQ(report.status, common::RunStatus::kCompleted) << report.message;
      ASSERT_EQ(report.events_published, static_cast<uint64_t>(n)) << source.kind;
      ASSERT_EQ(report.failed_records, 0u) << source.kind;
      seconds[source.kind].push_back(report.seconds);
    }
  }
  for (const auto& [kind, runs] : seconds) {
    std::printf("FIGURE %s: %d rows, producer run (read+map+publish+acks) median %.2f s of [%.2f, %.2f, %.2f]\n",
                kind.c_str(), n, median(runs), runs[0], runs[1], runs[2]);
  }
}

}  // namespace
}  // namespace leadsync::testing
