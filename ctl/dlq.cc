#include "ctl/dlq.h"

#include <nlohmann/json.hpp>

#include <iostream>

#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/mapping.h"
#include "common/pg.h"
#include "common/redact.h"

namespace leadsync::ctl {
namespace {

struct DeadLetter {
  int32_t partition;
  int64_t offset;
  std::string key;
  std::string error_class, stage, error, field, attempt, failed_at_ms;
  std::string original;  // topic[partition]@offset
};

DeadLetter describe(const RdKafka::Message& m) {
  DeadLetter d;
  d.partition = m.partition();
  d.offset = m.offset();
  if (m.key()) d.key = *m.key();
  d.error_class = common::header_value(m, "leadsync-error-class");
  d.stage = common::header_value(m, "leadsync-error-stage");
  d.error = common::redact(common::header_value(m, "leadsync-error"));  // worker error text may quote a DSN
  d.field = common::header_value(m, "leadsync-error-field");
  d.attempt = common::header_value(m, "leadsync-attempt");
  d.failed_at_ms = common::header_value(m, "leadsync-failed-at-ms");
  d.original = common::header_value(m, "leadsync-original-topic") + "[" +
               common::header_value(m, "leadsync-original-partition") + "]@" +
               common::header_value(m, "leadsync-original-offset");
  return d;
}

bool matches(const DeadLetter& d, const DlqFilter& f) {
  return (f.key.empty() || d.key == f.key) && (f.error_class.empty() || d.error_class == f.error_class);
}

std::string iso_time(const std::string& ms) {
  if (ms.empty()) return "";
  try {
    return common::format_timestamp_micros(std::stoll(ms) * 1000).substr(0, 23) + "Z";
  } catch (const std::exception&) {
    return ms;
  }
}

nlohmann::json to_json(const DeadLetter& d) {
  return {{"partition", d.partition},   {"offset", d.offset},
          {"key", d.key},               {"error_class", d.error_class},
          {"stage", d.stage},           {"error", d.error},
          {"field", d.field},           {"attempt", d.attempt},
          {"failed_at", iso_time(d.failed_at_ms)}, {"original", d.original}};
}

}  // namespace

std::vector<nlohmann::json> dlq_entries(const common::Config& config, const DlqFilter& filter, int limit) {
  common::TopicReader reader(config.kafka, config.kafka.dlq_topic);
  std::vector<nlohmann::json> out;
  reader.read({}, [&](const RdKafka::Message& m) {
    const auto d = describe(m);
    if (matches(d, filter) && static_cast<int>(out.size()) < limit) out.push_back(to_json(d));
    return true;
  });
  return out;
}

int dlq_list(const common::Config& config, const DlqFilter& filter, int limit, bool json) {
  common::TopicReader reader(config.kafka, config.kafka.dlq_topic);
  int shown = 0, matched = 0;
  reader.read({}, [&](const RdKafka::Message& m) {
    const auto d = describe(m);
    if (!matches(d, filter)) return true;
    ++matched;
    if (shown >= limit) return true;
    ++shown;
    if (json) {
      std::cout << to_json(d).dump() << "\n";
    } else {
      std::cout << config.kafka.dlq_topic << "[" << d.partition << "]@" << d.offset << "  " << d.key << "  "
                << d.error_class << "/" << d.stage << (d.field.empty() ? "" : "  field " + d.field) << "  attempt "
                << d.attempt << "  from " << d.original << "  at " << iso_time(d.failed_at_ms) << "\n    " << d.error
                << "\n";
    }
    return true;
  });
  if (!json) {
    std::cout << matched << " dead letter(s)" << (matched > shown ? ", " + std::to_string(shown) + " shown" : "")
              << "\n";
  }
  return matched;
}

int dlq_replay(const common::Config& config, const DlqFilter& filter, bool dry_run) {
  const bool use_cursor = filter.key.empty() && filter.error_class.empty();
  auto conn = common::pg_connect(config.postgres.url, "leadsyncctl");
  common::TopicReader reader(config.kafka, config.kafka.dlq_topic);
  std::vector<int64_t> from(static_cast<std::size_t>(reader.partitions()), 0);
  if (use_cursor) {
    pqxx::work tx(*conn);
    for (const auto& r : tx.exec_params(
             "SELECT partition, next_offset FROM leadsync.dlq_replay_cursor WHERE topic = $1", config.kafka.dlq_topic)) {
      const auto p = r[0].as<std::size_t>();
      if (p < from.size()) from[p] = r[1].as<int64_t>();
    }
    tx.commit();
  }
  common::KafkaProducer producer(config.kafka);
  std::vector<int64_t> next = from;
  int replayed = 0;
  reader.read(from, [&](const RdKafka::Message& m) {
    next[static_cast<std::size_t>(m.partition())] = m.offset() + 1;
    const auto d = describe(m);
    if (!matches(d, filter)) return true;
    ++replayed;
    if (dry_run) {
      std::cout << "would replay " << d.key << " (" << d.error_class << ": " << d.error << ")\n";
      return true;
    }
    // The payload goes back unchanged; the attempt count starts again.
    producer.produce(config.kafka.topic, d.key,
                     std::string_view(static_cast<const char*>(m.payload()), m.len()),
                     {{"leadsync-replayed-from", config.kafka.dlq_topic + "[" + std::to_string(d.partition) + "]@" +
                                                     std::to_string(d.offset)}});
    return true;
  });
  if (dry_run) return replayed;
  if (!producer.flush(std::chrono::seconds(60)) || producer.failed() > 0) {
    throw std::runtime_error("replay not acknowledged by Kafka: " + producer.first_error() +
                             " (the cursor did not move; replaying again is safe)");
  }
  if (use_cursor) {
    pqxx::work tx(*conn);
    for (std::size_t p = 0; p < next.size(); ++p) {
      if (next[p] == from[p]) continue;
      tx.exec_params(
          "INSERT INTO leadsync.dlq_replay_cursor (topic, partition, next_offset) VALUES ($1, $2, $3) "
          "ON CONFLICT (topic, partition) DO UPDATE SET next_offset = EXCLUDED.next_offset, replayed_at = now()",
          config.kafka.dlq_topic, static_cast<int>(p), next[p]);
    }
    tx.commit();
  }
  std::cout << "replayed " << replayed << " dead letter(s) to " << config.kafka.topic << "\n";
  return replayed;
}

}  // namespace leadsync::ctl
