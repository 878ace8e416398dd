#include "common/kafka_producer.h"

#include <stdexcept>

#include "common/kafka_handles.h"

namespace leadsync::common {

// A tracked message carries a heap-allocated owner of its Delivery as librdkafka's opaque: the
// report callback settles it and frees the owner, so the Delivery lives as long as either side
// still needs it, even when the sender gave up waiting.
using DeliveryOwner = std::shared_ptr<Delivery>;

std::string Delivery::error() const {
  std::lock_guard lock(mutex_);
  return error_;
}

void Delivery::settle(State state, std::string error) {
  {
    std::lock_guard lock(mutex_);
    error_ = std::move(error);
  }
  state_.store(state, std::memory_order_release);
}

void KafkaProducer::Report::dr_cb(RdKafka::Message& message) {
  const bool ok = message.err() == RdKafka::ERR_NO_ERROR;
  const std::string error = ok ? "" : "delivery to " + message.topic_name() + " failed: " + message.errstr();
  if (auto* owner = static_cast<DeliveryOwner*>(message.msg_opaque())) {
    std::unique_ptr<DeliveryOwner> release(owner);
    (*owner)->settle(ok ? Delivery::State::kDelivered : Delivery::State::kFailed, error);
  }
  if (ok) {
    delivered.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  failed.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lock(mutex);
  if (first_error.empty()) first_error = error;
}

KafkaProducer::KafkaProducer(const KafkaConfig& config, const std::map<std::string, std::string>& overrides) {
  auto conf = make_conf(config,
                        {
                            // Exactly-once per partition and ordered retries: no duplicates or
                            // reordering introduced by the producer itself.
                            {"enable.idempotence", "true"},
                            {"acks", "all"},
                            {"linger.ms", "5"},
                            {"batch.size", "1000000"},
                            {"compression.type", "lz4"},
                            {"queue.buffering.max.messages", "200000"},
                            {"queue.buffering.max.kbytes", "262144"},
                            {"message.timeout.ms", "120000"},
                        },
                        overrides);
  std::string err;
  if (conf->set("dr_cb", &report_, err) != RdKafka::Conf::CONF_OK) throw std::runtime_error(err);
  handle_.reset(RdKafka::Producer::create(conf.get(), err));
  if (!handle_) throw std::runtime_error("kafka producer: " + err);
}

KafkaProducer::~KafkaProducer() {
  if (handle_) handle_->flush(10'000);
}

std::string KafkaProducer::first_error() const {
  std::lock_guard lock(report_.mutex);
  return report_.first_error;
}

void KafkaProducer::produce(const std::string& topic, std::string_view key, std::string_view value,
                            const Headers& headers, int32_t partition) {
  enqueue(topic, key, value, headers, partition, nullptr);
}

std::shared_ptr<const Delivery> KafkaProducer::produce_tracked(const std::string& topic, std::string_view key,
                                                               std::string_view value, const Headers& headers) {
  auto owner = std::make_unique<DeliveryOwner>(std::make_shared<Delivery>());
  std::shared_ptr<const Delivery> delivery = *owner;
  enqueue(topic, key, value, headers, RdKafka::Topic::PARTITION_UA, owner.get());
  owner.release();  // librdkafka holds it now; the report callback frees it
  return delivery;
}

void KafkaProducer::enqueue(const std::string& topic, std::string_view key, std::string_view value,
                            const Headers& headers, int32_t partition, void* opaque) {
  for (;;) {
    RdKafka::Headers* h = nullptr;
    if (!headers.empty()) {
      h = RdKafka::Headers::create();
      for (const auto& [k, v] : headers) h->add(k, v.data(), v.size());
    }
    const auto rc = handle_->produce(topic, partition, RdKafka::Producer::RK_MSG_COPY,
                                     const_cast<char*>(value.data()), value.size(), key.data(), key.size(), 0, h,
                                     opaque);
    if (rc == RdKafka::ERR_NO_ERROR) {
      handle_->poll(0);
      return;
    }
    delete h;  // ownership passes to librdkafka only on success
    if (rc != RdKafka::ERR__QUEUE_FULL) {
      throw std::runtime_error("kafka produce to " + topic + ": " + RdKafka::err2str(rc));
    }
    handle_->poll(50);  // let deliveries drain the queue, then try again
  }
}

void KafkaProducer::warm_up(const std::string& topic, std::chrono::milliseconds timeout) {
  std::string err;
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(handle_.get(), topic, nullptr, err));
  if (!t) return;  // produce() reports the problem with its context
  RdKafka::Metadata* raw = nullptr;
  if (handle_->metadata(false, t.get(), &raw, static_cast<int>(timeout.count())) == RdKafka::ERR_NO_ERROR) {
    std::unique_ptr<RdKafka::Metadata> metadata(raw);
  }
}

bool KafkaProducer::flush(std::chrono::milliseconds timeout) {
  return handle_->flush(static_cast<int>(timeout.count())) == RdKafka::ERR_NO_ERROR;
}

}  // namespace leadsync::common
