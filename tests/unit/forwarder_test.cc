// The forwarder against librdkafka's mock cluster (no servers): failed records go to their next
// retry tier or the dead-letter topic, payload unchanged, and every forward's own delivery report
// decides whether the record is done (issue 7 item 4, R5).
#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/kafka_admin.h"
#include "common/kafka_producer.h"
#include "tests/unit/mock_kafka.h"
#include "workers/forwarder.h"

namespace leadsync::workers {
namespace {

using namespace std::chrono_literals;
using testing::MockCluster;
using testing::next_of;

struct ForwardBatch {
  MockCluster mock;
  common::KafkaConfig config;
  prometheus::Registry registry;
  std::unique_ptr<WorkerMetrics> metrics;
  // A consumer's handle is destroyed only after every message read from it: declared before the batch.
  std::unique_ptr<common::KafkaConsumer> consumer;
  std::vector<Record> batch;

  // Three records read from the main topic: a retryable failure, a permanent one, and a success.
  ForwardBatch() {
    config = mock.config();
    config.topic = "t";
    config.dlq_topic = "t.dlq";
    config.retry.attempts = 2;
    for (const auto& topic : {config.topic, config.retry_topic(1), config.retry_topic(2), config.dlq_topic}) {
      mock.create_topic(topic, 1);
    }
    metrics = std::make_unique<WorkerMetrics>(registry);
    common::KafkaProducer producer(config);
    for (const auto* v : {"retry-me", "dead", "fine"}) producer.produce(config.topic, v, v);
    EXPECT_TRUE(producer.flush(10s));
    consumer = std::make_unique<common::KafkaConsumer>(config, "g");
    consumer->subscribe({config.topic});
    for (int i = 0; i < 3; ++i) {
      Record r;
      r.message = next_of(*consumer, config.topic, 20s);
      if (!r.message) throw std::runtime_error("nothing consumed from the mock cluster");
      batch.push_back(std::move(r));
    }
    batch[0].failure = Failure{common::ErrorClass::kRetryable, "database", "deadlock", ""};
    batch[1].failure = Failure{common::ErrorClass::kPermanent, "database", "bad value", "score"};
    batch[1].event->set_run_id("run-1");
  }
};

std::vector<std::string> payloads(const common::KafkaConfig& config, const std::string& topic) {
  common::TopicReader reader(config, topic);
  std::vector<std::string> out;
  reader.read({0}, [&](const RdKafka::Message& m) {
    out.emplace_back(static_cast<const char*>(m.payload()), m.len());
    return true;
  });
  return out;
}

TEST(Forwarder, R5_EachFailedRecordGoesToItsRouteAndIsDoneOnlyOnceAcknowledged) {
  ForwardBatch s;
  RetryTiers tiers(s.config);
  Forwarder forwarder(s.config, tiers, *s.metrics);
  const auto result = forwarder.forward(s.batch, 10s);
  EXPECT_TRUE(result.all_acknowledged()) << result.first_error;
  EXPECT_EQ(result.dead_lettered.at("run-1").failed, 1);
  EXPECT_EQ(payloads(s.config, s.config.retry_topic(1)), std::vector<std::string>{"retry-me"});
  EXPECT_EQ(payloads(s.config, s.config.dlq_topic), std::vector<std::string>{"dead"});
  EXPECT_EQ(s.metrics->retried(1).Value(), 1);
  EXPECT_EQ(s.metrics->dead_lettered(common::ErrorClass::kPermanent).Value(), 1);
}

TEST(Forwarder, R5_AForwardTheBrokerRejectsIsReportedAsUnacknowledgedAndNotCounted) {
  ForwardBatch s;
  RetryTiers tiers(s.config);
  Forwarder forwarder(s.config, tiers, *s.metrics);
  s.batch[0].failure.reset();  // one forward only: the dead letter, in a produce request of its own
  // The broker refuses the next produce request for good (not a retriable error).
  rd_kafka_mock_push_request_errors(s.mock.get(), 0 /* Produce */, 1, RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
  const auto result = forwarder.forward(s.batch, 10s);
  ASSERT_EQ(result.unacknowledged.size(), 1u) << result.first_error;
  EXPECT_EQ(result.unacknowledged[0], &s.batch[1]);
  EXPECT_NE(result.first_error.find(s.config.dlq_topic), std::string::npos) << result.first_error;
  EXPECT_TRUE(result.dead_lettered.empty());
  EXPECT_EQ(s.metrics->dead_lettered(common::ErrorClass::kPermanent).Value(), 0);
}

}  // namespace
}  // namespace leadsync::workers
