// The worker's CPU per event outside the database and Kafka (issue 15): decoding a batch of
// change events, validating them, planning the batch (collapse per key) and staging the merge
// statement's parameters — the code the worker runs for every record, on events built as the
// producer builds them from the benchmark's generated sheet (examples/leadsync.yaml's mapping).
//
//   build/bench/leadsync-bench-worker-cpu [--benchmark_repetitions=5]
//
// Reported per event (items_per_second); compare builds back to back on one machine.
#include <benchmark/benchmark.h>
#include <google/protobuf/arena.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/gen/generated_header.h"
#include "bench/gen/lead_data.h"
#include "common/config.h"
#include "common/mapping.h"
#include "producers/mapper.h"
#include "producers/source.h"
#include "workers/collapse.h"
#include "workers/targets/entity_applier.h"
#include "workers/validate.h"

#ifndef LEADSYNC_EXAMPLE_CONFIG
#error "LEADSYNC_EXAMPLE_CONFIG must name examples/leadsync.yaml"
#endif

namespace {

using namespace leadsync;

constexpr std::size_t kBatch = 5000;  // worker.max_batch's default

struct Fixture {
  common::Config config = common::load_config(LEADSYNC_EXAMPLE_CONFIG);
  const common::SourceConfig& source = config.sources.front();
  const common::EntityConfig& entity = config.entity(source.entity);
  std::vector<std::string> payloads;

  Fixture() {
    bench::GeneratedHeader header;
    producers::Mapper mapper(source, entity, header);
    producers::SourceRecord record;
    producers::RowError error;
    common::ChangeEvent event;
    for (std::uint64_t i = 0; i < kBatch; ++i) {
      record.position = i + 2;
      record.cells = bench::make_lead_row(42, i);
      if (!mapper.map(record, event, error)) throw std::runtime_error("row does not map: " + error.message);
      event.set_run_id("bench-run");
      event.set_source_version(1'700'000'000'000'000 + static_cast<int64_t>(i));
      event.set_event_id(common::make_event_id(source.name, entity.name, event.key(), event.source_version(),
                                               event.checksum()));
      payloads.push_back(event.SerializeAsString());
    }
  }
};

const Fixture& fixture() {
  static const Fixture f;
  return f;
}

// Decode + validate + plan + stage, for one batch per iteration, each event decoded on the heap
// (how the worker decoded before its batch arena; kept for the comparison).
void WorkerBatchCpuHeapDecoded(benchmark::State& state) {
  const auto& f = fixture();
  workers::EntityApplier applier(f.config, f.entity);
  for (auto _ : state) {
    std::vector<common::ChangeEvent> events(f.payloads.size());
    std::vector<const common::ChangeEvent*> good;
    good.reserve(events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      if (!events[i].ParseFromString(f.payloads[i])) state.SkipWithError("decode failed");
      if (!workers::validate_event(f.config, events[i]).empty()) state.SkipWithError("validation failed");
      good.push_back(&events[i]);
    }
    workers::BatchPlan plan(f.config, good);
    std::size_t planned = 0;
    for (auto round = plan.next_round(); !round.empty(); round = plan.next_round()) {
      for (const auto& [entity, indexes] : round) {
        std::vector<const common::ChangeEvent*> chosen;
        chosen.reserve(indexes.size());
        for (const auto i : indexes) chosen.push_back(good[i]);
        auto params = applier.parameters(chosen);
        benchmark::DoNotOptimize(params);
        planned += chosen.size();
      }
    }
    if (planned != kBatch) state.SkipWithError("the plan lost events");
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBatch));
}
BENCHMARK(WorkerBatchCpuHeapDecoded)->Unit(benchmark::kMillisecond);

// The same with the events decoded into one arena whose first block every batch reuses, as the
// worker's consume loop does (workers/consume_loop.cc).
void WorkerBatchCpu(benchmark::State& state) {
  const auto& f = fixture();
  workers::EntityApplier applier(f.config, f.entity);
  google::protobuf::ArenaOptions options;
  static std::vector<char> initial(8 << 20);
  options.initial_block = initial.data();
  options.initial_block_size = initial.size();
  options.start_block_size = 1 << 20;
  options.max_block_size = 8 << 20;
  google::protobuf::Arena arena(options);
  for (auto _ : state) {
    arena.Reset();
    std::vector<const common::ChangeEvent*> good;
    good.reserve(f.payloads.size());
    for (std::size_t i = 0; i < f.payloads.size(); ++i) {
      auto* e = google::protobuf::Arena::CreateMessage<common::ChangeEvent>(&arena);
      if (!e->ParseFromString(f.payloads[i])) state.SkipWithError("decode failed");
      if (!workers::validate_event(f.config, *e).empty()) state.SkipWithError("validation failed");
      good.push_back(e);
    }
    workers::BatchPlan plan(f.config, good);
    for (auto round = plan.next_round(); !round.empty(); round = plan.next_round()) {
      for (const auto& [entity, indexes] : round) {
        std::vector<const common::ChangeEvent*> chosen;
        for (const auto i : indexes) chosen.push_back(good[i]);
        auto params = applier.parameters(chosen);
        benchmark::DoNotOptimize(params);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kBatch));
}
BENCHMARK(WorkerBatchCpu)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
