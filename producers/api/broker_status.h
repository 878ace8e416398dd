// What the status page shows from Kafka rather than from the run store: the consumer lag of the
// workers' group on the main topic and its retry tiers (common/group_lag.h) and the dead letters
// per source and error class (common/dead_letter_tally.h). A background thread samples the broker
// every `interval`; requests read the last sample and never wait on the broker, so an unreachable
// broker shows as an error next to the last known figures instead of slowing the page.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>

#include "common/config.h"

namespace leadsync::producers::api {

class BrokerStatus {
 public:
  BrokerStatus(const common::Config& config, std::chrono::milliseconds interval);
  ~BrokerStatus();  // stops and joins the thread
  BrokerStatus(const BrokerStatus&) = delete;
  BrokerStatus& operator=(const BrokerStatus&) = delete;

  void start();
  void stop();

  // GET /api/v1/lag: {group, members, lag, topics: [{topic, lag, committed, partitions: [...]}],
  // sampled_at, error}; members, lag and sampled_at are null before the first sample.
  nlohmann::json lag() const;
  // A source's dead letters by class, {"permanent": 2}; {} when it has none.
  nlohmann::json dead_letters(const std::string& source) const;
  // {topic, unattributed: {class: count}, total, caught_up, counted_at, error}.
  nlohmann::json dead_letter_topic() const;

 private:
  void loop();

  const common::Config& config_;
  std::chrono::milliseconds interval_;
  std::atomic<bool> stop_{false};
  std::thread thread_;

  mutable std::mutex mu_;
  nlohmann::json lag_;
  std::map<std::string, nlohmann::json> dead_letters_;  // source -> {class: count}
  nlohmann::json dead_letter_topic_;
};

}  // namespace leadsync::producers::api
