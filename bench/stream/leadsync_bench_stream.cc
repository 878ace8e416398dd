// leadsync-bench-stream: the load generator of benchmark scenario S4 (bench/README.md). Publishes
// single-record changes of generated leads straight to a source's topic at a fixed rate, each built
// as the producer builds it (producers/sync_run.cc publish()): the full mapped image of the lead,
// observed_at = now, a source_version that only grows, the deterministic event id.
//
//   leadsync-bench-stream --config F --source NAME --rows 1000000 --rate 1000 --seconds 60 --run-id ID [--wait-for-go]
//   leadsync-bench-stream --config F --delete-topics     (removes the config's main/retry/DLQ topics)
//
// Prints one JSON line: events sent and acknowledged, the achieved rate, and how far the sender fell
// behind its schedule (a sender that cannot keep the rate would understate the latency it causes).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench/gen/generated_header.h"
#include "bench/gen/lead_data.h"
#include "common/config.h"
#include "common/errors.h"
#include "common/kafka_admin.h"
#include "common/kafka_producer.h"
#include "common/logging.h"
#include "common/mapping.h"
#include "producers/mapper.h"
#include "producers/source.h"

namespace {

namespace bench = leadsync::bench;
namespace common = leadsync::common;
namespace producers = leadsync::producers;
using Clock = std::chrono::steady_clock;

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Options {
  std::string source;
  std::uint64_t rows = 1'000'000;
  std::uint64_t seed = 42;
  double rate = 1000;
  double seconds = 60;
  std::string run_id;
  bool wait_for_go = false;
};

// Builds the event of the change number `n` exactly as the producer's publish() does.
class EventMaker {
 public:
  EventMaker(const common::SourceConfig& source, const common::EntityConfig& entity, const Options& o)
      : source_(source), entity_(entity), options_(o), mapper_(source, entity, header_), pick_(o.seed ^ 0x5eedu) {}

  // Serialized event for a random lead; `run_id` names the run the workers count it under.
  const std::string& next(std::uint64_t n, const std::string& run_id) {
    const std::uint64_t index = pick_() % options_.rows;
    record_.position = index + 2;  // the CSV line of the row in the generated sheet
    record_.cells = bench::make_lead_row(options_.seed, index);
    bench::change_lead_row(record_.cells, options_.seed + 1 + n, index);
    if (!mapper_.map(record_, event_, error_)) {
      throw std::runtime_error("generated row " + std::to_string(index) + " does not map: " + error_.message);
    }
    const int64_t observed = now_micros();
    version_ = std::max(version_ + 1, observed);
    event_.set_run_id(run_id);
    event_.set_source_version(version_);
    event_.set_observed_at_micros(observed);
    event_.set_event_id(common::make_event_id(source_.name, entity_.name, event_.key(), version_, event_.checksum()));
    event_.SerializeToString(&buffer_);
    key_ = entity_.name + "/" + event_.key();
    return buffer_;
  }
  const std::string& key() const { return key_; }
  int64_t version() const { return version_; }

 private:
  const common::SourceConfig& source_;
  const common::EntityConfig& entity_;
  const Options& options_;
  bench::GeneratedHeader header_;  // declared before mapper_, which reads it
  producers::Mapper mapper_;
  std::mt19937_64 pick_;
  producers::SourceRecord record_;
  producers::RowError error_;
  common::ChangeEvent event_;
  std::string buffer_, key_;
  int64_t version_ = 0;
};

int stream(const common::Config& config, const Options& o) {
  const auto* source = config.source(o.source);
  if (!source) throw common::ConfigError("--source: no source named '" + o.source + "'");
  const auto& entity = config.entity(source->entity);
  EventMaker maker(*source, entity, o);
  common::KafkaProducer producer(config.kafka);

  // A new producer learns an unknown topic's partitions only at librdkafka's next periodic topic
  // scan (about 1 s); a steady stream pays that once, not per event. One warm-up event, acknowledged
  // before the clock starts, keeps that start-up cost out of the measured latencies.
  if (o.wait_for_go) {
    const auto& warm = maker.next(0, o.run_id + "-warmup");
    producer.produce(config.kafka.topic, maker.key(), warm);
    while (!producer.flush(std::chrono::seconds(5))) {
    }
    if (producer.failed() != 0) throw std::runtime_error("warm-up event not acknowledged: " + producer.first_error());
    std::cout << nlohmann::json{{"warmed_up", true}, {"run_id", o.run_id + "-warmup"}}.dump() << std::endl;
    std::string go;
    if (!std::getline(std::cin, go)) throw std::runtime_error("--wait-for-go: stdin closed before 'go'");
  }
  const std::uint64_t delivered_before = producer.delivered();

  const auto total = static_cast<std::uint64_t>(o.rate * o.seconds);
  double max_behind_ms = 0;
  std::uint64_t sent = 0;
  const auto start = Clock::now();
  while (sent < total) {
    // Event n is due at start + n / rate; sleep until then, never burst ahead of the schedule.
    const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                 std::chrono::duration<double>(static_cast<double>(sent) / o.rate));
    const auto now = Clock::now();
    if (now < due) {
      producer.poll(0);
      std::this_thread::sleep_until(due);
    } else {
      max_behind_ms = std::max(max_behind_ms, std::chrono::duration<double, std::milli>(now - due).count());
    }
    const auto& payload = maker.next(sent + 1, o.run_id);
    producer.produce(config.kafka.topic, maker.key(), payload);
    ++sent;
  }
  const double send_seconds = std::chrono::duration<double>(Clock::now() - start).count();
  while (!producer.flush(std::chrono::seconds(5))) {
  }
  const std::uint64_t acked = producer.delivered() - delivered_before;
  nlohmann::json report = {{"run_id", o.run_id},
                           {"sent", sent},
                           {"acked", acked},
                           {"failed", producer.failed()},
                           {"send_seconds", send_seconds},
                           {"achieved_rate", send_seconds > 0 ? static_cast<double>(sent) / send_seconds : 0.0},
                           {"max_behind_schedule_ms", max_behind_ms},
                           {"last_source_version", maker.version()}};
  std::cout << report.dump() << std::endl;
  return producer.failed() == 0 && acked == sent ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Publishes single-record lead changes to a source's topic at a fixed rate (benchmark S4)."};
  std::string config_path, log_level = "warn";
  bool delete_topics = false;
  Options o;
  app.add_option("--config", config_path, "configuration file (YAML)")->required();
  app.add_option("--source", o.source, "the source the events come from");
  app.add_option("--rows", o.rows, "keys are drawn from the sheet's rows 0..rows-1")->capture_default_str();
  app.add_option("--seed", o.seed, "seed of the sheet (same as leadsync-gen --seed)")->capture_default_str();
  app.add_option("--rate", o.rate, "events per second")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--seconds", o.seconds, "how long to send")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--run-id", o.run_id, "run_id carried by every event (the workers count applies under it)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error");
  app.add_flag("--wait-for-go", o.wait_for_go,
               "publish one warm-up event (run id RUN_ID-warmup), print {\"warmed_up\":true}, then wait for a "
               "line on stdin before the timed stream");
  app.add_flag("--delete-topics", delete_topics, "delete the config's main, retry and dead-letter topics, then exit");
  CLI11_PARSE(app, argc, argv);
  try {
    common::setup_logging("text", log_level);
    const auto config = common::load_config(config_path);
    if (delete_topics) {
      std::vector<std::string> names;
      for (const auto& t : common::leadsync_topics(config.kafka)) names.push_back(t.name);
      common::delete_topics(config.kafka, names);
      return 0;
    }
    if (o.source.empty() || o.run_id.empty()) throw common::ConfigError("--source and --run-id are required");
    if (o.rows == 0) throw common::ConfigError("--rows must be positive");
    return stream(config, o);
  } catch (const common::ConfigError& e) {
    std::cerr << "leadsync-bench-stream: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "leadsync-bench-stream: " << e.what() << "\n";
    return 1;
  }
}
