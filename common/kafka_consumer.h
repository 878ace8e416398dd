// A Kafka consumer in a group with manual offset storage: the owner stores a record's offset only
// after the record is done (applied, or forwarded and acknowledged), and the stored offsets are
// committed in the background and on revoke. Rebalances reach the owner through hooks.
#pragma once

#include <librdkafka/rdkafkacpp.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/config.h"

namespace leadsync::common {

// Reads the last value of a header, or an empty string.
std::string header_value(const RdKafka::Message& msg, const std::string& name);

class KafkaConsumer {
 public:
  using PartitionList = std::vector<RdKafka::TopicPartition*>;
  // Called from inside consume() when partitions are revoked, before they go: the owner applies
  // and stores what it holds for them. Must not call consume().
  using RevokeHook = std::function<void(const PartitionList&)>;
  using AssignHook = std::function<void(const PartitionList&)>;

  KafkaConsumer(const KafkaConfig& config, const std::string& group,
                const std::map<std::string, std::string>& overrides = {});
  ~KafkaConsumer();  // closes (leaves the group) if close() was not called
  KafkaConsumer(const KafkaConsumer&) = delete;
  KafkaConsumer& operator=(const KafkaConsumer&) = delete;

  void set_hooks(AssignHook on_assign, RevokeHook on_revoke);
  void subscribe(const std::vector<std::string>& topics);
  std::unique_ptr<RdKafka::Message> consume(int timeout_ms);
  // Marks `offset` (the next offset to read) as processed for the partition; committed by the
  // background auto-commit or by commit().
  void store_offset(const std::string& topic, int32_t partition, int64_t next_offset);
  void commit();  // synchronous commit of stored offsets; ignores "nothing to commit"
  void pause(const std::string& topic, int32_t partition);
  void resume(const std::string& topic, int32_t partition);
  void pause_all();
  void resume_all();
  // Rewinds the partition so that the next consume() returns `offset` again.
  void seek(const std::string& topic, int32_t partition, int64_t offset);
  size_t assignment_size();
  // Messages between the consumer's position and the high watermark, summed over the assignment,
  // from librdkafka's cached watermarks (no broker round trip).
  int64_t lag();
  void close();

 private:
  struct Rebalance : RdKafka::RebalanceCb {
    void rebalance_cb(RdKafka::KafkaConsumer* consumer, RdKafka::ErrorCode err, PartitionList& partitions) override;
    AssignHook on_assign;
    RevokeHook on_revoke;
    bool assigned_once = false;
  };
  Rebalance rebalance_;  // outlives handle_
  std::unique_ptr<RdKafka::KafkaConsumer> handle_;
  bool closed_ = false;
  bool subscribed_ = false;
};

}  // namespace leadsync::common
