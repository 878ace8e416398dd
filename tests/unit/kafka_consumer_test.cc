// The consumer's partition handling against librdkafka's mock cluster (no servers): a partition
// the worker paused (held for a retry backoff) must not stay paused after a rebalance takes it
// away and gives it back (issue 7 item 11, R13).
#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <memory>
#include <string>

#include "common/kafka_consumer.h"
#include "common/kafka_handles.h"
#include "common/kafka_producer.h"

namespace leadsync::common {
namespace {

using namespace std::chrono_literals;

// A mock cluster of one broker, owned by a client handle that exists only to host it.
class MockCluster {
 public:
  MockCluster() {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    handle_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err));
    if (!handle_) throw std::runtime_error(err);
    cluster_ = rd_kafka_mock_cluster_new(handle_.get(), 1);
    if (!cluster_) throw std::runtime_error("mock cluster");
  }
  ~MockCluster() { rd_kafka_mock_cluster_destroy(cluster_); }
  void create_topic(const std::string& name, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  KafkaConfig config() const {
    KafkaConfig c;
    c.brokers = rd_kafka_mock_cluster_bootstraps(cluster_);
    return c;
  }

 private:
  RdKafkaPtr handle_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

// The next message of `topic` within `timeout`, or nullptr.
std::unique_ptr<RdKafka::Message> next_of(KafkaConsumer& consumer, const std::string& topic,
                                          std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto msg = consumer.consume(100);
    if (msg && msg->err() == RdKafka::ERR_NO_ERROR && msg->topic_name() == topic) return msg;
  }
  return nullptr;
}

TEST(KafkaConsumer, R13_APartitionPausedWhenItIsRevokedIsNotPausedWhenItIsAssignedAgain) {
  MockCluster mock;
  mock.create_topic("held", 1);
  mock.create_topic("other", 1);
  const auto config = mock.config();
  {
    KafkaProducer producer(config);
    for (int i = 0; i < 3; ++i) producer.produce("held", "k", "v" + std::to_string(i));
    producer.produce("other", "k", "x");
    ASSERT_TRUE(producer.flush(10s));
    ASSERT_EQ(producer.failed(), 0u) << producer.first_error();
  }
  int assigned = 0, revoked = 0;
  KafkaConsumer consumer(config, "g", {{"session.timeout.ms", "6000"}});
  consumer.set_hooks([&](const auto&) { ++assigned; }, [&](const auto&) { ++revoked; });
  consumer.subscribe({"held"});
  auto first = next_of(consumer, "held", 20s);
  ASSERT_TRUE(first) << "nothing consumed from the mock cluster";
  // Held for a backoff, as the consume loop holds a retry tier's head.
  consumer.pause("held", 0);
  consumer.seek("held", 0, first->offset());

  // A rebalance takes the partition away while it is held...
  consumer.subscribe({"other"});
  ASSERT_TRUE(next_of(consumer, "other", 20s));
  ASSERT_GE(revoked, 1);
  // ...and gives it back: its records must flow again.
  consumer.subscribe({"held"});
  auto again = next_of(consumer, "held", 20s);
  EXPECT_TRUE(again) << "the re-assigned partition stayed paused";
  EXPECT_GE(assigned, 3);
  consumer.close();
}

}  // namespace
}  // namespace leadsync::common
