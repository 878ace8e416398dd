// R5, R13 — how the worker consumes and forwards (issue 7): a forward to a retry tier or the
// dead-letter topic that Kafka does not acknowledge never lets the source offset move, so the
// record is retried and never lost; a second worker takes its share of the main topic; and what a
// worker applied reaches the group's committed offsets within seconds even while the group
// rebalances, so that a crash replays (and dead-letters again) only seconds of records.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/kafka_handles.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {
namespace {

using namespace std::chrono_literals;
using common::Value;

std::map<std::string, Value> lead_fields(const std::string& key, int64_t score) {
  return {
      {"first_name", text("Ada " + key)}, {"last_name", text("Lovelace")},
      {"email", text(key + "@example.com")}, {"phone", text("+44 20 7946 0000")},
      {"company", text("Analytical Engines")}, {"status", text("new")},
      {"assignee", text("ana")}, {"lead_sources", list({"web"})},
      {"score", integer(score)}, {"created_at", timestamp(1'767'225'600'000'000)},
      {"updated_at", null()}, {"notes", text("good")},
  };
}

common::ChangeEvent lead_event(const common::Config& config, const std::string& key, int64_t version,
                               const std::string& run_id) {
  return change_event(config.sources.at(0).name, "lead", key, leadsync::v1::OP_UPSERT, version,
                      lead_fields(key, version), run_id);
}

int64_t count_leads(pqxx::connection& conn, const common::Config& config) {
  pqxx::work tx(conn);
  return tx.exec1("SELECT count(*) FROM " + common::qualified(conn, config.postgres.schema, "leads"))[0].as<int64_t>();
}

// The offset the worker group has committed for one partition (-1 when none).
int64_t committed_offset(const common::Config& config, const std::string& topic, int32_t partition) {
  auto conf = common::make_conf(config.kafka, {{"group.id", config.kafka.group}, {"enable.auto.commit", "false"}}, {});
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!consumer) throw std::runtime_error("consumer: " + err);
  std::unique_ptr<RdKafka::TopicPartition> tp(RdKafka::TopicPartition::create(topic, partition));
  std::vector<RdKafka::TopicPartition*> list{tp.get()};
  const auto rc = consumer->committed(list, 10'000);
  consumer->close();
  if (rc != RdKafka::ERR_NO_ERROR) throw std::runtime_error("committed offsets: " + RdKafka::err2str(rc));
  return tp->offset() < 0 ? -1 : tp->offset();
}

TEST(Forwarding, R5_ADeadLetterTheBrokerRejectsLeavesTheSourceOffsetUncommittedAndIsRetriedUntilItLands) {
  const auto tag = unique_tag("fwdreject");
  const auto config = isolated_example_config(tag, 1);
  // Failure injection: a dead-letter topic whose size limit no record batch fits (the batch header
  // alone is 61 bytes), created before the environment, which leaves existing topics as they are.
  common::create_topics(config.kafka, {{config.kafka.dlq_topic, 1, -1, {{"max.message.bytes", "64"}}}});
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag;
  const int64_t version = 1'000;

  common::KafkaProducer kafka(config.kafka);
  for (int i = 0; i < 5; ++i) produce_event(kafka, config.kafka, lead_event(config, "g" + std::to_string(i), version, run_id));
  const std::string poison = R"({"lead_id": "not a ChangeEvent"})";
  kafka.produce(config.kafka.topic, "lead/poison", poison);  // offset 5 of the only partition
  for (int i = 5; i < 10; ++i) produce_event(kafka, config.kafka, lead_event(config, "g" + std::to_string(i), version, run_id));
  ASSERT_TRUE(kafka.flush(30s));
  ASSERT_EQ(kafka.failed(), 0u) << kafka.first_error();

  WorkerThread worker(config);
  auto conn = connect(config);
  ASSERT_TRUE(eventually([&] { return count_leads(*conn, config) == 10; }, 60s)) << count_leads(*conn, config);
  ASSERT_TRUE(eventually(
      [&] { return metric_value(worker.telemetry(), "leadsync_forward_failures_total") >= 2; }, 30s))
      << "the rejected dead letter was not retried";
  // The dead letter was refused, so the poison record's offset (5) must not be committed: the
  // record is still in the source partition, waiting.
  EXPECT_LE(committed_offset(config, config.kafka.topic, 0), 5);
  EXPECT_EQ(sum(high_watermarks(config.kafka, config.kafka.dlq_topic)), 0);

  // The topic is fixed: the same record lands in the dead-letter topic, and only then does the
  // offset move past it.
  common::set_topic_configs(config.kafka, config.kafka.dlq_topic, {{"max.message.bytes", "1048588"}});
  ASSERT_TRUE(eventually([&] { return committed_offset(config, config.kafka.topic, 0) == 11; }, 60s))
      << "committed " << committed_offset(config, config.kafka.topic, 0);
  const auto dead = read_topic(config.kafka, config.kafka.dlq_topic);
  ASSERT_EQ(dead.size(), 1u);
  for (const auto& d : dead) {
    EXPECT_EQ(d.value, poison);
    EXPECT_EQ(d.header("leadsync-original-offset"), "5");
    EXPECT_EQ(d.header("leadsync-error-stage"), "decode");
  }
  EXPECT_EQ(count_leads(*conn, config), 10);
}

TEST(Forwarding, R13_ASecondWorkerTakesItsShareOfTheMainTopicNotOnlyRetryTiers) {
  const auto tag = unique_tag("balance");
  const auto config = isolated_example_config(tag, 3);
  IsolatedEnvironment env(config);
  const auto run_id = "run-" + tag;
  WorkerThread first(config);
  ASSERT_TRUE(eventually([&] { return first.telemetry().ready(); }, 30s));
  WorkerThread second(config);
  ASSERT_TRUE(eventually([&] { return second.telemetry().ready(); }, 30s));
  std::this_thread::sleep_for(5s);  // a cooperative rebalance settles in two rounds

  common::KafkaProducer kafka(config.kafka);
  constexpr int kLeads = 600;  // spread by key over the main topic's 3 partitions
  for (int i = 0; i < kLeads; ++i) produce_event(kafka, config.kafka, lead_event(config, "b" + std::to_string(i), 5, run_id));
  ASSERT_TRUE(kafka.flush(30s));
  auto conn = connect(config);
  ASSERT_TRUE(eventually([&] { return count_leads(*conn, config) == kLeads; }, 60s)) << count_leads(*conn, config);
  const auto by_first = metric_value(first.telemetry(), "leadsync_events_consumed_total", {{"topic", config.kafka.topic}});
  const auto by_second = metric_value(second.telemetry(), "leadsync_events_consumed_total", {{"topic", config.kafka.topic}});
  EXPECT_GT(by_first, 0) << "the first worker read nothing from the main topic";
  EXPECT_GT(by_second, 0) << "the second worker read nothing from the main topic";
  EXPECT_EQ(by_first + by_second, kLeads);
}

// The group's committed offset of every partition of `topic`, read through one consumer that
// never joins the group (it only asks the coordinator), so that a test can watch the offsets often.
class CommittedOffsets {
 public:
  CommittedOffsets(const common::Config& config, const std::string& topic) : topic_(topic), partitions_(config.kafka.partitions) {
    auto conf = common::make_conf(config.kafka, {{"group.id", config.kafka.group}, {"enable.auto.commit", "false"}}, {});
    std::string err;
    consumer_.reset(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!consumer_) throw std::runtime_error("consumer: " + err);
  }
  ~CommittedOffsets() { consumer_->close(); }
  CommittedOffsets(const CommittedOffsets&) = delete;
  CommittedOffsets& operator=(const CommittedOffsets&) = delete;

  // Indexed by partition, -1 where nothing is committed; nullopt when the broker did not answer.
  std::optional<std::vector<int64_t>> read() {
    std::vector<std::unique_ptr<RdKafka::TopicPartition>> owned;
    std::vector<RdKafka::TopicPartition*> list;
    for (int p = 0; p < partitions_; ++p) {
      owned.emplace_back(RdKafka::TopicPartition::create(topic_, p));
      list.push_back(owned.back().get());
    }
    if (consumer_->committed(list, 5'000) != RdKafka::ERR_NO_ERROR) return std::nullopt;
    std::vector<int64_t> out;
    for (const auto* tp : list) out.push_back(tp->offset() < 0 ? -1 : tp->offset());
    return out;
  }

 private:
  std::string topic_;
  int partitions_;
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A worker killed without leaving kept its members in the group until their session timed out, and
// its restart made the group rebalance meanwhile; librdkafka commits nothing while the group is not
// settled, so the surviving worker applied its partitions for up to 10 s (with a kill every few
// seconds, tens of seconds) without committing, every later crash replayed all of it and each
// poison row among it was dead-lettered once more (the chaos test counted hundreds of copies).
// Workers with an instance id (static members) are restarted without a rebalance.
// Here one of two worker processes is killed (and restarted) while a steady stream is applied; for
// every record the time from its apply (`_synced_at`) to the group's committed offset passing it
// is measured, except for the records applied in the last seconds before the kill, which the
// killed worker may have applied without committing (those are the replay a crash costs).
TEST(Forwarding, R13_AfterAWorkerIsKilledAndRestartedEveryAppliedRecordIsCommittedWithinSeconds) {
  const auto tag = unique_tag("commitlag");
  auto config = isolated_example_config(tag, 3);
  config.worker.max_batch = 250;
  IsolatedEnvironment env(config);
  TempDir dir;
  // One configuration per worker slot: the same instance id when a slot's worker is restarted.
  for (const int slot : {0, 1}) {
    auto slot_config = config;
    slot_config.worker.instance_id = "worker-" + std::to_string(slot);
    write_text_file(dir.file("worker-" + std::to_string(slot) + ".yaml"), config_yaml(slot_config));
  }
  int started = 0;
  const auto start_worker = [&](int slot) {
    const auto log = dir.file("worker-" + std::to_string(slot) + "-" + std::to_string(++started) + ".log");
    const auto config_path = dir.file("worker-" + std::to_string(slot) + ".yaml");
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{LEADSYNC_BINARY_DIR "/workers/leadsync-worker", "--config", config_path}, log);
  };
  const auto run_id = "run-" + tag;
  constexpr int kEvents = 24'000;  // 800 a second for 30 s, one per key

  // Samples of the committed offsets: (wall ms, offset per partition).
  std::mutex samples_mutex;
  std::vector<std::pair<int64_t, std::vector<int64_t>>> samples;
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    CommittedOffsets committed(config, config.kafka.topic);
    while (sampling.load()) {
      if (auto offsets = committed.read()) {
        std::lock_guard lock(samples_mutex);
        samples.emplace_back(wall_ms(), std::move(*offsets));
      }
      std::this_thread::sleep_for(200ms);
    }
  });
  struct Join {
    std::atomic<bool>& flag;
    std::thread& thread;
    ~Join() {
      flag.store(false);
      if (thread.joinable()) thread.join();
    }
  } join_sampler{sampling, sampler};

  std::unique_ptr<ChildProcess> workers[2] = {start_worker(0), start_worker(1)};
  std::atomic<bool> producing{true};
  std::string producer_error;
  std::thread producer([&] {
    try {
      common::KafkaProducer kafka(config.kafka);
      for (int n = 0; n < kEvents && producing.load(); ++n) {
        produce_event(kafka, config.kafka, lead_event(config, "c" + std::to_string(n), 7, run_id));
        if (n % 400 == 399) std::this_thread::sleep_for(500ms);
      }
      if (!kafka.flush(60s) || kafka.failed() != 0) producer_error = "not acknowledged: " + kafka.first_error();
    } catch (const std::exception& e) {
      producer_error = e.what();
    }
  });
  struct Join producer_join{producing, producer};

  // Both workers apply for a while, then the second is killed and started again at once.
  auto conn = connect(config);
  ASSERT_TRUE(eventually([&] { return count_leads(*conn, config) >= 2'000; }, 60s)) << count_leads(*conn, config);
  std::this_thread::sleep_for(4s);
  const auto killed_at = wall_ms();
  workers[1]->signal(SIGKILL);
  const auto status = workers[1]->wait_exit(10s);
  ASSERT_TRUE(status && WIFSIGNALED(*status)) << workers[1]->describe();
  workers[1] = start_worker(1);

  producer.join();
  EXPECT_EQ(producer_error, "");
  ASSERT_TRUE(eventually([&] { return count_leads(*conn, config) == kEvents; }, 180s)) << count_leads(*conn, config);
  const auto ends = high_watermarks(config.kafka, config.kafka.topic);
  ASSERT_TRUE(eventually(
      [&] {
        std::lock_guard lock(samples_mutex);
        return !samples.empty() && samples.back().second == ends;
      },
      60s))
      << "the committed offsets never reached the end of the topic";
  sampling.store(false);
  sampler.join();
  for (auto& w : workers) {
    w->signal(SIGTERM);
    EXPECT_TRUE(w->wait_exit(30s)) << w->log_tail();
  }

  // When each record was applied: its key's `_synced_at` (one event per key, and a replay of the
  // same version leaves the row as it is).
  std::map<std::string, int64_t> applied_ms;
  {
    pqxx::work tx(*conn);
    for (const auto& row : tx.exec("SELECT lead_id, floor(extract(epoch FROM _synced_at) * 1000)::bigint FROM " +
                                   common::qualified(*conn, config.postgres.schema, "leads"))) {
      applied_ms[row[0].as<std::string>()] = row[1].as<int64_t>();
    }
  }
  const auto messages =
      read_messages(config.kafka, config.kafka.topic, std::vector<int64_t>(ends.size(), 0), ends);
  ASSERT_EQ(messages.size(), static_cast<std::size_t>(kEvents));
  // The killed worker may have applied its last records (a batch and the commit interval) without
  // committing them: those are excluded; every other record must be committed within kMaxLag.
  constexpr int64_t kMaxLagMs = 5'000, kUncommittedBeforeKillMs = 3'000;
  std::vector<int64_t> worst(ends.size(), 0);
  std::vector<std::string> worst_at(ends.size());
  int measured = 0;
  for (const auto& m : messages) {
    const auto key = m.key.substr(m.key.find('/') + 1);
    const auto applied = applied_ms.at(key);
    if (applied >= killed_at - kUncommittedBeforeKillMs && applied <= killed_at) continue;
    const auto committed = std::find_if(samples.begin(), samples.end(), [&](const auto& s) {
      return s.first >= applied && s.second[m.partition] > m.offset;
    });
    ASSERT_NE(committed, samples.end()) << "offset " << m.offset << " of partition " << m.partition;
    ++measured;
    if (const auto lag = committed->first - applied; lag > worst[m.partition]) {
      worst[m.partition] = lag;
      worst_at[m.partition] = "offset " + std::to_string(m.offset) + ", applied " +
                              std::to_string(applied - killed_at) + " ms after the kill";
    }
  }
  EXPECT_GT(measured, kEvents / 2);
  for (std::size_t p = 0; p < worst.size(); ++p) {
    std::printf("[          ] partition %zu: applied records committed within %.1f s (worst: %s)\n", p,
                static_cast<double>(worst[p]) / 1000, worst_at[p].c_str());
    EXPECT_LE(worst[p], kMaxLagMs) << "partition " << p << ": " << worst_at[p];
  }
}

}  // namespace
}  // namespace leadsync::testing
