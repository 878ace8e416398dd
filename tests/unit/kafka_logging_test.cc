// librdkafka's own log lines go through spdlog (the process's log format and level), never raw
// (`%3|…|FAIL|…`) to stderr.
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>
#include <string>

#include "common/kafka_producer.h"

namespace leadsync::common {
namespace {

TEST(KafkaLogging, LibrdkafkaLinesGoThroughSpdlogNotRawToStderr) {
  std::ostringstream captured;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(
      std::make_shared<spdlog::logger>("capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(captured)));
  ::testing::internal::CaptureStderr();
  {
    KafkaConfig config;
    config.brokers = "127.0.0.1:1";  // nothing listens on loopback port 1: the connection is refused
    KafkaProducer producer(config, {{"message.timeout.ms", "1500"}});
    producer.produce("t", "k", "v");
    producer.flush(std::chrono::milliseconds(2500));
  }
  const auto err = ::testing::internal::GetCapturedStderr();
  spdlog::set_default_logger(previous);
  EXPECT_EQ(err.find("|FAIL|"), std::string::npos) << err;
  EXPECT_NE(captured.str().find("kafka FAIL: "), std::string::npos) << captured.str();
  EXPECT_NE(captured.str().find("Connection refused"), std::string::npos) << captured.str();
}

}  // namespace
}  // namespace leadsync::common
