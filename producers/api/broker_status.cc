#include "producers/api/broker_status.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <set>

#include "common/dead_letter_tally.h"
#include "common/group_lag.h"
#include "common/redact.h"

namespace leadsync::producers::api {
namespace {

using nlohmann::json;

// The API's time format (as common/runs_ops.cc writes it): 2026-01-02T03:04:05.123Z.
std::string now_iso() {
  const auto now = std::chrono::system_clock::now();
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[40];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms));
  return out;
}

json by_class(const common::DeadLetterCounts::ByClass& counts) {
  json j = json::object();
  for (const auto& [cls, n] : counts) j[cls] = n;
  return j;
}

// One broker round each interval: a failing one leaves its error beside the last figures; the
// same error is logged once, not every interval.
class Warner {
 public:
  void operator()(const std::string& what, const std::string& error) {
    if (error == last_) return;
    last_ = error;
    if (!error.empty()) spdlog::warn("API: {}: {}", what, common::redact(error));
  }

 private:
  std::string last_;
};

}  // namespace

BrokerStatus::BrokerStatus(const common::Config& config, std::chrono::milliseconds interval)
    : config_(config), interval_(interval) {
  lag_ = {{"group", config_.kafka.group}, {"members", nullptr}, {"lag", nullptr}, {"topics", json::array()},
          {"sampled_at", nullptr}, {"error", nullptr}};
  dead_letter_topic_ = {{"topic", config_.kafka.dlq_topic}, {"unattributed", json::object()}, {"total", 0},
                        {"caught_up", false}, {"counted_at", nullptr}, {"error", nullptr}};
}

BrokerStatus::~BrokerStatus() { stop(); }

void BrokerStatus::start() {
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { loop(); });
}

void BrokerStatus::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

json BrokerStatus::lag() const {
  std::lock_guard lock(mu_);
  return lag_;
}

json BrokerStatus::dead_letters(const std::string& source) const {
  std::lock_guard lock(mu_);
  const auto it = dead_letters_.find(source);
  return it == dead_letters_.end() ? json::object() : it->second;
}

json BrokerStatus::dead_letter_topic() const {
  std::lock_guard lock(mu_);
  return dead_letter_topic_;
}

void BrokerStatus::loop() {
  // Short broker timeouts: a stop waits for at most one of them.
  constexpr auto kTimeout = std::chrono::seconds(5);
  std::unique_ptr<common::GroupLagReader> lag_reader;
  std::unique_ptr<common::DeadLetterTally> tally;
  std::set<std::string> sources;
  for (const auto& s : config_.sources) sources.insert(s.name);
  Warner lag_warning, dlq_warning;
  while (!stop_.load()) {
    std::string error;
    try {
      if (!lag_reader) {
        lag_reader = std::make_unique<common::GroupLagReader>(config_.kafka, config_.kafka.group,
                                                              common::worker_topics(config_.kafka), kTimeout);
      }
      const auto g = lag_reader->sample();
      json topics = json::array();
      for (const auto& t : g.topics) {
        json parts = json::array();
        for (const auto& p : t.partitions) {
          parts.push_back({{"partition", p.partition},
                           {"committed", p.committed >= 0 ? json(p.committed) : json(nullptr)},
                           {"high", p.high},
                           {"lag", p.lag}});
        }
        topics.push_back({{"topic", t.topic}, {"lag", t.lag}, {"committed", t.committed}, {"partitions", parts}});
      }
      std::lock_guard lock(mu_);
      lag_["members"] = g.members;
      lag_["lag"] = g.lag;
      lag_["topics"] = topics;
      lag_["sampled_at"] = now_iso();
      lag_["error"] = nullptr;
    } catch (const std::exception& e) {
      error = e.what();
      std::lock_guard lock(mu_);
      lag_["error"] = common::redact(error);
    }
    lag_warning("consumer lag", error);

    error.clear();
    bool caught_up = false;
    try {
      if (!tally) tally = std::make_unique<common::DeadLetterTally>(config_.kafka, sources, kTimeout);
      caught_up = tally->update();
    } catch (const std::exception& e) {
      error = e.what();
    }
    dlq_warning("dead letters", error);
    if (tally) {
      const auto& c = tally->counts();
      std::lock_guard lock(mu_);
      for (const auto& s : sources) dead_letters_[s] = by_class(c.of(s));
      dead_letter_topic_["unattributed"] = by_class(c.unattributed());
      dead_letter_topic_["total"] = c.total();
      dead_letter_topic_["caught_up"] = caught_up;
      if (error.empty()) dead_letter_topic_["counted_at"] = now_iso();
    }
    {
      std::lock_guard lock(mu_);
      dead_letter_topic_["error"] = error.empty() ? json(nullptr) : json(common::redact(error));
    }
    if (!caught_up && error.empty()) continue;  // a long topic is counted in rounds, without pauses
    for (auto waited = std::chrono::milliseconds(0); waited < interval_ && !stop_.load();
         waited += std::chrono::milliseconds(50)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
}

}  // namespace leadsync::producers::api
