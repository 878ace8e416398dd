// The consumer's partition handling against librdkafka's mock cluster (no servers): a partition
// the worker paused (held for a retry backoff) must not stay paused after a rebalance takes it
// away and gives it back (issue 7 item 11, R13).
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "tests/unit/mock_kafka.h"

namespace leadsync::common {
namespace {

using namespace std::chrono_literals;

using testing::MockCluster;
using testing::next_of;

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
