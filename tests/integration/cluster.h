// Test fixture support for integration tests: the real broker and database of the local cluster
// (.local/env), with per-test topics, consumer group, sources and target schema so that tests
// never see each other's data.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/config.h"
#include "common/kafka_admin.h"
#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "common/mapping.h"
#include "common/pg.h"
#include "common/runs.h"
#include "common/telemetry.h"

namespace leadsync::testing {

// The example config (examples/leadsync.yaml) pointed at the local cluster and made unique for
// this test: topic/group/dlq names, the target schema and the source names carry `tag`.
common::Config isolated_example_config(const std::string& tag, int partitions = 3);
// A fresh tag: test name + a random suffix, safe as an identifier.
std::string unique_tag(const std::string& base);

// Creates the schema and the topics of `config`; drops them again on destruction.
class IsolatedEnvironment {
 public:
  explicit IsolatedEnvironment(const common::Config& config);
  ~IsolatedEnvironment();

 private:
  common::Config config_;
};

// A worker running in a background thread until stopped (or destroyed).
class WorkerThread {
 public:
  explicit WorkerThread(const common::Config& config);
  ~WorkerThread();
  void stop();
  common::Telemetry& telemetry() { return telemetry_; }

 private:
  common::Config config_;
  common::Telemetry telemetry_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

std::unique_ptr<pqxx::connection> connect(const common::Config& config);

// Typed values for hand-built events.
common::Value text(const std::string& s);
common::Value null();
common::Value integer(int64_t i);
common::Value timestamp(int64_t micros);
common::Value list(const std::vector<std::string>& items);  // an empty list is a list, not "no value"
// Polls `done` every 100 ms until it returns true or `timeout` passes; returns its last answer.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout);
// Sum of everything the workers accounted for a run (applied, stale, dead-lettered).
int64_t accounted_events(pqxx::connection& conn, const std::string& run_id);
std::string source_path(const std::string& relative);

// ------------------------------------------------------------------ Kafka inspection

// One message as read back from a topic.
struct TopicMessage {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
};

// The high watermark (the offset the next message will get) of each partition of `topic`, indexed
// by partition. The topic has `kafka.partitions` partitions, as leadsync creates its topics.
// Throws when the broker does not answer within `timeout`.
std::vector<int64_t> high_watermarks(const common::KafkaConfig& kafka, const std::string& topic,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(10));
int64_t sum(const std::vector<int64_t>& offsets);
// Every message of `topic` in [from[p], to[p]) of each partition p, in partition then offset order,
// read without a consumer group. Throws, naming the partition, when they cannot all be read within
// `timeout`.
std::vector<TopicMessage> read_messages(const common::KafkaConfig& kafka, const std::string& topic,
                                        const std::vector<int64_t>& from, const std::vector<int64_t>& to,
                                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

// ------------------------------------------------------------------ processes and files

// `config` as a YAML document that load_config() reads back to the same configuration: lets a
// test hand its isolated configuration to an executable (leadsync-worker --config FILE).
std::string config_yaml(const common::Config& config);
void write_text_file(const std::string& path, const std::string& text);

// A fresh directory under the system temp directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A child process (fork + exec) with stdout and stderr appended to `log_path` and the test's
// environment. It gets SIGKILL when the thread that started it dies, and on destruction it is
// killed (SIGKILL) and reaped if still running, so no test leaves a process behind.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path);  // throws when it cannot start
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  bool running();  // reaps the process if it has exited
  void signal(int sig);  // no-op once the process has been reaped
  // Waits up to `timeout` for the process to exit; its waitpid status, or nullopt if it still runs.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // "exited with status 0", "killed by signal 9", "running".
  std::string describe();
  // The last `max_bytes` of the process's log, for failure messages.
  std::string log_tail(std::size_t max_bytes = 4000) const;

 private:
  int pid_ = -1;
  std::optional<int> status_;
  std::string log_path_;
};

// ------------------------------------------------------------------ events, headers and metrics

// A change event as a source adapter emits it: checksum and deterministic event_id computed from
// `fields` (leave them empty for a DELETE), observed now.
common::ChangeEvent change_event(const std::string& source, const std::string& entity, const std::string& key,
                                 leadsync::v1::Op op, int64_t source_version,
                                 const std::map<std::string, common::Value>& fields, const std::string& run_id);
// Produces `event` serialized to the main topic with the message key `entity/key`, as adapters do.
void produce_event(common::KafkaProducer& producer, const common::KafkaConfig& kafka, const common::ChangeEvent& event);

// A message read back together with its headers (retry tiers and dead letters carry their context
// there).
struct TopicRecord {
  int32_t partition = 0;
  int64_t offset = 0;
  std::string key;
  std::string value;
  std::map<std::string, std::string> headers;  // the last value of each header name

  std::string header(const std::string& name) const;  // "" when absent
};

// Follows every partition of a topic from its first message, outside any consumer group, so that
// a test can watch what the workers write (retry tiers, dead letters) as it happens without
// joining their group. The topic has `kafka.partitions` partitions, as leadsync creates its topics.
class TopicTail {
 public:
  TopicTail(const common::KafkaConfig& kafka, const std::string& topic);
  ~TopicTail();
  TopicTail(const TopicTail&) = delete;
  TopicTail& operator=(const TopicTail&) = delete;

  // The next message, or nullopt when none arrives within `timeout`.
  std::optional<TopicRecord> next(std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
};

// Every message of `topic` up to its high watermarks at the time of the call, with headers, in
// partition then offset order. Throws, naming the topic, when they cannot all be read in `timeout`.
std::vector<TopicRecord> read_topic(const common::KafkaConfig& kafka, const std::string& topic,
                                    std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The current value of a counter or gauge in `telemetry`'s registry whose labels include `labels`,
// summed over the matching series; 0 when there is none.
double metric_value(common::Telemetry& telemetry, const std::string& name,
                    const std::map<std::string, std::string>& labels = {});

// A command run to its end (at most `timeout`): its exit code (-1 when it did not exit by itself)
// and everything it printed on stdout and stderr.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult run_command(const std::vector<std::string>& argv, const std::string& log_path,
                          std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_loopback_port();

// Waits (up to 30 s) until the main topic of `config` answers for every partition: fresh topics
// answer "not leader" until their partitions have leaders. False when it never did.
bool wait_for_topic_leaders(const common::Config& config);

// A sheet of `rows` leads in the example layout (L-0000001 ...), every row's Notes set to `note`.
std::string lead_sheet(int rows, const std::string& note = "");

// A test that runs leadsync's executables as a user would: the isolated example config, whose
// source reads dir_/leads.csv, written to dir_/leadsync.yaml, with its schema and topics, a database
// session and a run store on it.
class ExecutablesTest : public ::testing::Test {
 protected:
  // Call from SetUp(); `tag` names the test's topics, schema and sources.
  void start(const std::string& tag);
  const std::string& source() const { return config_.sources.at(0).name; }
  // Runs build/`binary` (e.g. "/ctl/leadsyncctl") with --config and `args` to its end.
  CommandResult run(const std::string& binary, const std::vector<std::string>& args,
                    std::chrono::milliseconds timeout);

  TempDir dir_;
  common::Config config_;
  std::unique_ptr<IsolatedEnvironment> env_;
  std::unique_ptr<pqxx::connection> conn_;
  std::unique_ptr<common::RunStore> store_;
  int calls_ = 0;
};

}  // namespace leadsync::testing
