// The worker's merge statement alone, on the local cluster's PostgreSQL: batches of the benchmark's
// generated leads (examples/leadsync.yaml's mapping, worker.max_batch's default of 5,000 rows)
// applied by the worker's own code (EntityApplier::apply: the parameters, then the statement), one
// transaction each, as the worker applies a batch, without Kafka, the worker's other statements or
// its decoding. For trying a change of the statement in a minute, on the same rows, with the noise of
// one process.
//
//   source .local/env
//   build/bench/leadsync-bench-merge [--batches 40] [--passes 3]
//
// Each pass empties the table, applies every batch as new rows (insert) and then every batch again,
// each row with a newer version and one field changed (update). Prints the milliseconds per batch
// of each pass and their medians. It works in a schema of its own, dropped at the end, and deletes
// only the audit rows of its own run from the shared leadsync.record_changes.
#include <pqxx/pqxx>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include <unistd.h>

#include "bench/gen/generated_header.h"
#include "bench/gen/lead_data.h"
#include "common/config.h"
#include "common/pg.h"
#include "common/schema.h"
#include "producers/mapper.h"
#include "producers/source.h"
#include "workers/targets/entity_applier.h"

#ifndef LEADSYNC_EXAMPLE_CONFIG
#error "LEADSYNC_EXAMPLE_CONFIG must name examples/leadsync.yaml"
#endif

namespace {

using namespace leadsync;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kBatch = 5000;
constexpr const char* kSchema = "leadsync_bench_merge";

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

int run(int argc, char** argv) {
  int batches = 40, passes = 3;
  bool bad_argument = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--batches" && i + 1 < argc) {
      batches = std::atoi(argv[++i]);
    } else if (a == "--passes" && i + 1 < argc) {
      passes = std::atoi(argv[++i]);
    } else {
      bad_argument = true;
    }
  }
  if (bad_argument || batches < 1 || passes < 1) {
    std::fprintf(stderr, "usage: %s [--batches N >= 1] [--passes N >= 1]\n", argv[0]);
    return 2;
  }
  const char* url = std::getenv("LEADSYNC_PG_URL");
  if (!url) throw std::runtime_error("LEADSYNC_PG_URL is not set: source .local/env first");

  auto config = common::load_config(LEADSYNC_EXAMPLE_CONFIG);
  config.postgres.url = url;
  config.postgres.schema = kSchema;
  const auto& source = config.sources.front();
  const auto& entity = config.entity(source.entity);
  workers::EntityApplier applier(config, entity);
  const auto run_id = "leadsync-bench-merge-" + std::to_string(::getpid());
  // The events, built as the producer builds them; the update pass's are newer, `status` changed.
  bench::GeneratedHeader header;
  producers::Mapper mapper(source, entity, header);
  const auto total = static_cast<std::size_t>(batches) * kBatch;
  std::vector<common::ChangeEvent> inserts(total), updates(total);
  producers::SourceRecord record;
  producers::RowError error;
  for (std::size_t i = 0; i < total; ++i) {
    record.position = i + 2;
    record.cells = bench::make_lead_row(42, i);
    for (auto* e : {&inserts[i], &updates[i]}) {
      const bool update = e == &updates[i];
      if (update) record.cells[bench::kStatus] = "changed";
      if (!mapper.map(record, *e, error)) throw std::runtime_error("row does not map: " + error.message);
      e->set_run_id(run_id);
      e->set_source_version(1'700'000'000'000'000 + static_cast<int64_t>(i) + (update ? 1 : 0));
      e->set_event_id(common::make_event_id(source.name, entity.name, e->key(), e->source_version(), e->checksum()));
    }
  }

  auto conn = common::pg_connect(config.postgres, "leadsync-bench-merge");
  {
    pqxx::nontransaction tx(*conn);
    tx.exec("DROP SCHEMA IF EXISTS " + common::quote_ident(kSchema) + " CASCADE");
  }
  common::migrate(*conn, config);
  const auto table = common::quote_ident(kSchema) + "." + common::quote_ident(entity.table);

  std::vector<double> insert_medians, update_medians;
  for (int pass = 0; pass < passes; ++pass) {
    {
      pqxx::nontransaction tx(*conn);
      tx.exec("TRUNCATE " + table);
      tx.exec("DELETE FROM leadsync.record_changes WHERE run_id = " + tx.quote(run_id));
      tx.exec("CHECKPOINT");
    }
    for (auto* events : {&inserts, &updates}) {
      std::vector<double> ms;
      for (int b = 0; b < batches; ++b) {
        std::vector<const common::ChangeEvent*> batch;
        for (std::size_t i = 0; i < kBatch; ++i) batch.push_back(&(*events)[static_cast<std::size_t>(b) * kBatch + i]);
        const auto t0 = Clock::now();
        pqxx::work tx(*conn);
        tx.exec("SELECT set_config('leadsync.origin', 'worker', true)");
        const auto counts = applier.apply(tx, batch);
        tx.commit();
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        const bool insert = events == &inserts;
        const auto found = counts.find(run_id);
        if (found == counts.end()) throw std::runtime_error("no counts for the run");
        const auto& c = found->second;
        if ((insert ? c.inserted : c.updated) != static_cast<int64_t>(kBatch)) {
          throw std::runtime_error("batch " + std::to_string(b) + ": not every row was " +
                                   (insert ? "inserted" : "updated"));
        }
      }
      const bool insert = events == &inserts;
      (insert ? insert_medians : update_medians).push_back(median(ms));
      double sum = 0;
      for (const auto m : ms) sum += m;
      std::printf("pass %d %s: %d batches, %.1f ms, median %.2f ms per batch\n", pass + 1, insert ? "insert" : "update",
                  batches, sum, median(ms));
    }
  }
  std::printf("median of passes: insert %.2f ms, update %.2f ms per batch of %zu\n", median(insert_medians),
              median(update_medians), kBatch);
  pqxx::nontransaction tx(*conn);
  tx.exec("DELETE FROM leadsync.record_changes WHERE run_id = " + tx.quote(run_id));
  tx.exec("DROP SCHEMA " + common::quote_ident(kSchema) + " CASCADE");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "leadsync-bench-merge: %s\n", e.what());
    return 1;
  }
}
