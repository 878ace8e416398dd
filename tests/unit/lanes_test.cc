// The worker's apply lanes (workers/lanes.h) over fake targets, with records consumed from
// librdkafka's mock cluster: partitions stay whole and in order, the lanes run at once, and a lane
// that fails loses nothing and counts nothing twice. The real path (PostgresTarget lanes against
// PostgreSQL) is what every worker integration test runs: `worker.connections` is 2 by default.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/kafka_consumer.h"
#include "common/kafka_producer.h"
#include "tests/unit/mock_kafka.h"
#include "workers/lanes.h"

namespace leadsync::workers {
namespace {

using namespace std::chrono_literals;

// `n` records of a topic of `partitions` partitions, as the consume loop hands them over. The
// messages hold their consumer's handle, which waits for them when it is destroyed: the records
// are declared last, to go first.
struct Consumed {
  Consumed(int partitions, int n) {
    mock.create_topic("t", partitions);
    const auto config = mock.config();
    {
      common::KafkaProducer producer(config);
      for (int i = 0; i < n; ++i) producer.produce("t", "key-" + std::to_string(i), "v");
      EXPECT_TRUE(producer.flush(10s));
    }
    consumer = std::make_unique<common::KafkaConsumer>(config, "g",
                                                       std::map<std::string, std::string>{{"auto.offset.reset", "earliest"}});
    consumer->subscribe({"t"});
    while (static_cast<int>(records.size()) < n) {
      auto msg = testing::next_of(*consumer, "t", 20s);
      if (!msg) break;
      Record r;
      r.message = std::move(msg);
      records.push_back(std::move(r));
    }
    EXPECT_EQ(static_cast<int>(records.size()), n);
  }
  ~Consumed() {
    records.clear();
    consumer->close();
  }

  testing::MockCluster mock;
  std::unique_ptr<common::KafkaConsumer> consumer;
  std::vector<Record> records;
};

std::vector<Record*> pointers(std::vector<Record>& records) {
  std::vector<Record*> out;
  for (auto& r : records) out.push_back(&r);
  return out;
}

// A lane that keeps what it was given; optionally waits until every lane of the batch is inside
// apply() (proving that they run at once), or throws.
struct FakeLane : ApplyTarget {
  struct Shared {
    std::mutex m;
    std::condition_variable cv;
    int inside = 0;
    int expected = 0;
  };
  explicit FakeLane(Shared* shared = nullptr) : shared(shared) {}

  bool connect() override { return up = true; }
  bool available() const override { return up; }
  RunCounts apply(const std::vector<Record*>& records) override {
    given.push_back(records);
    if (shared) {
      std::unique_lock lock(shared->m);
      ++shared->inside;
      shared->cv.notify_all();
      met_others = shared->cv.wait_for(lock, 10s, [&] { return shared->inside >= shared->expected; });
    }
    if (fail_next) {
      fail_next = false;
      throw TargetUnavailable(Unavailability::kOutage, "lane down");
    }
    RunCounts c;
    c["run"].inserted = static_cast<int64_t>(records.size());
    return c;
  }
  void count_dead_letters(const RunCounts& per_run) override { dead.push_back(per_run); }
  void settle(const RunCounts& dead_lettered, const std::map<TopicPartition, int64_t>&) override {
    settled.push_back(dead_lettered);
    if (fail_settle) throw TargetUnavailable(Unavailability::kOutage, "lane down");
  }

  Shared* shared;
  bool up = false, fail_next = false, fail_settle = false, met_others = false;
  std::vector<std::vector<Record*>> given;
  std::vector<RunCounts> dead, settled;
};

struct Lanes {
  explicit Lanes(int n, FakeLane::Shared* shared = nullptr) {
    std::vector<std::unique_ptr<ApplyTarget>> owned;
    for (int i = 0; i < n; ++i) {
      owned.push_back(std::make_unique<FakeLane>(shared));
      fakes.push_back(static_cast<FakeLane*>(owned.back().get()));
    }
    target = std::make_unique<LanedTarget>(std::move(owned));
  }
  std::vector<FakeLane*> fakes;
  std::unique_ptr<LanedTarget> target;
};

TEST(Lanes, R13_EachPartitionGoesWholeToOneLaneAndTheLanesCarryEvenLoads) {
  Consumed batch(5, 200);
  const auto all = pointers(batch.records);
  const auto lane_of = LanedTarget::assign(all, 2);
  std::map<int32_t, std::set<std::size_t>> lanes_of_partition;
  std::map<int32_t, int> size;
  std::vector<int> load(2, 0);
  for (std::size_t i = 0; i < all.size(); ++i) {
    lanes_of_partition[all[i]->message->partition()].insert(lane_of[i]);
    ++size[all[i]->message->partition()];
    ++load[lane_of[i]];
  }
  int largest = 0;
  for (const auto& [p, lanes] : lanes_of_partition) {
    EXPECT_EQ(lanes.size(), 1u) << "partition " << p << " was split over lanes";
    largest = std::max(largest, size[p]);
  }
  EXPECT_GT(load[0], 0);
  EXPECT_GT(load[1], 0);
  // Largest first to the least loaded lane: the lanes differ by at most one partition's records.
  EXPECT_LE(std::abs(load[0] - load[1]), largest);
  EXPECT_EQ(LanedTarget::assign(all, 1), std::vector<std::size_t>(all.size(), 0));
}

TEST(Lanes, R13_TheLanesApplyAtOnceEachItsPartitionsInOffsetOrderAndTheCountsAddUp) {
  Consumed batch(4, 120);
  FakeLane::Shared shared;
  shared.expected = 2;
  Lanes lanes(2, &shared);
  ASSERT_TRUE(lanes.target->connect());
  const auto counts = lanes.target->apply(pointers(batch.records));
  EXPECT_EQ(counts.at("run").inserted, 120);
  std::size_t total = 0;
  for (auto* lane : lanes.fakes) {
    ASSERT_EQ(lane->given.size(), 1u);
    EXPECT_TRUE(lane->met_others) << "a lane ran alone: the lanes did not apply at once";
    std::map<int32_t, int64_t> last;
    for (const auto* r : lane->given[0]) {
      const auto p = r->message->partition();
      if (last.count(p)) {
        EXPECT_GT(r->offset(), last[p]) << "partition " << p << " out of order";
      }
      last[p] = r->offset();
    }
    total += lane->given[0].size();
  }
  EXPECT_EQ(total, 120u);
}

TEST(Lanes, R13_ALaneThatFailsIsThrownAfterTheOthersAndWhatTheyCommittedIsCountedOnce) {
  Consumed batch(4, 80);
  const auto records = pointers(batch.records);
  Lanes lanes(2);
  ASSERT_TRUE(lanes.target->connect());
  lanes.fakes[1]->fail_next = true;
  EXPECT_THROW(lanes.target->apply(records), TargetUnavailable);
  ASSERT_EQ(lanes.fakes[0]->given.size(), 1u) << "the healthy lane was not applied";
  const auto committed = static_cast<int64_t>(lanes.fakes[0]->given[0].size());
  ASSERT_GT(committed, 0);

  // The worker tries the batch again. A real lane skips what it committed (its offsets are stored
  // with it) and counts it 0; the fake counts it again, so the retry returns both lanes' records
  // once each plus what the healthy lane committed the first time.
  const auto again = lanes.target->apply(records);
  EXPECT_EQ(again.at("run").inserted, 80 + committed);
  // Carried once, not forever.
  EXPECT_EQ(lanes.target->apply(records).at("run").inserted, 80);
}

TEST(Lanes, R13_DeadLettersAreCountedByTheFirstLaneOnlyAfterEveryOtherLaneSettled) {
  Lanes lanes(3);
  RunCounts dead;
  dead["run"].failed = 2;
  lanes.fakes[2]->fail_settle = true;
  EXPECT_THROW(lanes.target->settle(dead, {}), TargetUnavailable);
  EXPECT_TRUE(lanes.fakes[0]->settled.empty()) << "dead letters counted before every lane settled";
  lanes.fakes[2]->fail_settle = false;
  lanes.target->settle(dead, {});
  ASSERT_EQ(lanes.fakes[0]->settled.size(), 1u);
  EXPECT_EQ(lanes.fakes[0]->settled[0].at("run").failed, 2);
  EXPECT_TRUE(lanes.fakes[1]->settled.back().empty());
}

}  // namespace
}  // namespace leadsync::workers
