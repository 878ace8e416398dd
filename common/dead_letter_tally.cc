#include "common/dead_letter_tally.h"

#include <algorithm>
#include <stdexcept>

#include "common/errors.h"
#include "common/kafka_consumer.h"
#include "common/kafka_handles.h"
#include "common/mapping.h"

namespace leadsync::common {
namespace {

const DeadLetterCounts::ByClass kNone;

// A consumer outside any group: never joined, nothing committed.
std::unique_ptr<RdKafka::KafkaConsumer> reader(const KafkaConfig& config) {
  auto conf = make_conf(config,
                        {{"group.id", "leadsync-reader"},  // required by the API; never joined or committed
                         {"enable.auto.commit", "false"},
                         {"enable.partition.eof", "true"}},
                        {});
  std::string err;
  std::unique_ptr<RdKafka::KafkaConsumer> handle(RdKafka::KafkaConsumer::create(conf.get(), err));
  if (!handle) throw std::runtime_error("kafka reader: " + err);
  return handle;
}

std::string known_class(const std::string& name) {
  for (const auto c : {ErrorClass::kPermanent, ErrorClass::kRetryable, ErrorClass::kInfrastructure}) {
    if (name == error_class_name(c)) return name;
  }
  return "other";
}

}  // namespace

DeadLetterCounts::DeadLetterCounts(std::set<std::string> sources) : sources_(std::move(sources)) {}

void DeadLetterCounts::add(std::string_view payload, const std::string& error_class) {
  const auto cls = known_class(error_class);
  ++total_;
  ChangeEvent event;
  if (event.ParseFromArray(payload.data(), static_cast<int>(payload.size())) && sources_.contains(event.source())) {
    ++by_source_[event.source()][cls];
  } else {
    ++unattributed_[cls];
  }
}

const DeadLetterCounts::ByClass& DeadLetterCounts::of(const std::string& source) const {
  const auto it = by_source_.find(source);
  return it == by_source_.end() ? kNone : it->second;
}

DeadLetterTally::DeadLetterTally(const KafkaConfig& config, std::set<std::string> sources,
                                 std::chrono::milliseconds timeout)
    : config_(config),
      topic_(config.dlq_topic),
      timeout_ms_(static_cast<int>(timeout.count())),
      counts_(std::move(sources)),
      handle_(reader(config)) {}

DeadLetterTally::~DeadLetterTally() {
  if (handle_) handle_->close();
}

bool DeadLetterTally::update(int64_t budget) {
  RdKafka::Metadata* raw = nullptr;
  std::string err;
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(handle_.get(), topic_, nullptr, err));
  if (handle_->metadata(false, t.get(), &raw, timeout_ms_) != RdKafka::ERR_NO_ERROR || !raw) {
    throw std::runtime_error("no metadata for the dead-letter topic " + topic_);
  }
  std::unique_ptr<RdKafka::Metadata> md(raw);
  if (md->topics()->empty() || md->topics()->at(0)->err() != RdKafka::ERR_NO_ERROR) {
    throw std::runtime_error("dead-letter topic " + topic_ + " not found");
  }
  next_.resize(std::max(next_.size(), md->topics()->at(0)->partitions()->size()), 0);

  // Only the partitions with something new are read; one whose oldest messages expired before
  // they were counted is read from its oldest retained one.
  std::vector<RdKafka::TopicPartition*> assign;
  struct Free {
    std::vector<RdKafka::TopicPartition*>& v;
    ~Free() { RdKafka::TopicPartition::destroy(v); }
  } free_parts{assign};
  for (std::size_t p = 0; p < next_.size(); ++p) {
    int64_t low = 0, high = 0;
    if (handle_->query_watermark_offsets(topic_, static_cast<int32_t>(p), &low, &high, timeout_ms_) !=
        RdKafka::ERR_NO_ERROR) {
      throw std::runtime_error("cannot read the watermarks of " + topic_ + "[" + std::to_string(p) + "]");
    }
    next_[p] = std::max(next_[p], low);
    if (next_[p] < high) assign.push_back(RdKafka::TopicPartition::create(topic_, static_cast<int32_t>(p), next_[p]));
  }
  if (assign.empty()) return true;

  // The messages are read by a consumer of their own that lives only while there is something new
  // (dead letters are rare): a long-lived consumer that once fetched a topic deleted later hangs
  // in librdkafka's destroy, and with it the producer's shutdown.
  auto consumer = reader(config_);
  struct Close {
    RdKafka::KafkaConsumer& c;
    ~Close() {
      c.unassign();
      c.close();
    }
  } close_consumer{*consumer};
  if (consumer->assign(assign) != RdKafka::ERR_NO_ERROR) throw std::runtime_error("cannot read " + topic_);
  std::set<int32_t> at_end;
  int64_t counted = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
  while (at_end.size() < assign.size() && counted < budget) {
    std::unique_ptr<RdKafka::Message> m(consumer->consume(100));
    const auto p = static_cast<std::size_t>(m->partition());
    if (m->err() == RdKafka::ERR_NO_ERROR) {
      if (m->offset() < next_[p]) continue;  // already counted
      counts_.add({static_cast<const char*>(m->payload()), m->len()}, header_value(*m, "leadsync-error-class"));
      next_[p] = m->offset() + 1;
      at_end.erase(m->partition());
      ++counted;
      deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms_);
    } else if (m->err() == RdKafka::ERR__PARTITION_EOF) {
      // The end as of now (control records and gaps included); later dead letters come next time.
      next_[p] = std::max(next_[p], m->offset());
      at_end.insert(m->partition());
    } else if (m->err() != RdKafka::ERR__TIMED_OUT) {
      throw std::runtime_error("reading " + topic_ + ": " + m->errstr());
    } else if (std::chrono::steady_clock::now() > deadline) {
      throw std::runtime_error("reading " + topic_ + ": no message in time");
    }
  }
  return at_end.size() == assign.size();
}

}  // namespace leadsync::common
