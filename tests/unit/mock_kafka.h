// librdkafka's mock cluster for unit tests of consumer and producer logic (no servers): a cluster
// of one broker hosted by a client handle that exists only for it.
#pragma once

#include <gtest/gtest.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <chrono>
#include <memory>
#include <stdexcept>
#include <string>

#include "common/kafka_consumer.h"
#include "common/kafka_handles.h"

namespace leadsync::testing {

class MockCluster {
 public:
  MockCluster() {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    // The host handle has no brokers of its own; its warning about that is noise.
    rd_kafka_conf_set(conf, "log_level", "3", err, sizeof err);
    handle_.reset(rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err));
    if (!handle_) throw std::runtime_error(err);
    cluster_ = rd_kafka_mock_cluster_new(handle_.get(), 1);
    if (!cluster_) throw std::runtime_error("mock cluster");
  }
  ~MockCluster() { rd_kafka_mock_cluster_destroy(cluster_); }
  MockCluster(const MockCluster&) = delete;
  MockCluster& operator=(const MockCluster&) = delete;

  void create_topic(const std::string& name, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(cluster_, name.c_str(), partitions, 1), RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  // A KafkaConfig pointed at the mock broker.
  common::KafkaConfig config() const {
    common::KafkaConfig c;
    c.brokers = rd_kafka_mock_cluster_bootstraps(cluster_);
    return c;
  }
  rd_kafka_mock_cluster_t* get() { return cluster_; }

 private:
  common::RdKafkaPtr handle_;
  rd_kafka_mock_cluster_t* cluster_ = nullptr;
};

// The next message of `topic` within `timeout`, or nullptr.
inline std::unique_ptr<RdKafka::Message> next_of(common::KafkaConsumer& consumer, const std::string& topic,
                                                 std::chrono::milliseconds timeout) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    auto msg = consumer.consume(100);
    if (msg && msg->err() == RdKafka::ERR_NO_ERROR && msg->topic_name() == topic) return msg;
  }
  return nullptr;
}

}  // namespace leadsync::testing
