// Shared by the reverse direction's tests (issue 9): the example configuration with a reverse:
// section (a write-back CRM id field, a CRM source, topics and group of its own), the reverse topics,
// and an application's writes to the captured table.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "common/config.h"
#include "tests/integration/cluster.h"

namespace leadsync::testing {

// isolated_example_config(tag) plus: entity lead gets `twenty_id` (role: write_back); a source
// "crm-<tag>" (the CRM's inbound source, keys are CRM ids); reverse: captures lead as
// "app-<tag>", topic t.<tag>.reverse, group g.<tag>.reverse, fields first_name, last_name, email,
// status and score, priorities as given, CRM at `crm_url`.
common::Config reverse_test_config(const std::string& tag, const std::string& crm_url,
                                   const std::map<std::string, common::FieldPriority>& priority = {});

// Both directions with the real inbound adapter: entity lead (first_name, last_name, email, status,
// score, all held by Twenty, and twenty_id, role write_back), source crm-<tag> of kind twenty keyed
// by the Twenty id (API key in TWENTY_API_KEY; a webhook receiver on a free port when
// `webhook_secret_env` names the secret's variable), reverse: of lead as app-<tag> with `priority`
// (YAML, e.g. "{status: crm}").
common::Config roundtrip_config(const std::string& tag, const std::string& crm_url,
                                const std::string& priority_yaml = "{}", const std::string& webhook_secret_env = "");

// Creates the schema (with the capture triggers), the main topics and the reverse topics; drops all
// on destruction, and the outbox rows of the captured table.
class ReverseEnvironment {
 public:
  explicit ReverseEnvironment(const common::Config& config);
  ~ReverseEnvironment();

 private:
  common::Config config_;
  IsolatedEnvironment main_;
};

// The captured table, schema-qualified and quoted.
std::string lead_table(const common::Config& config);
// Rows in leadsync.outbox for the captured table.
int64_t outbox_rows(pqxx::connection& conn, const common::Config& config);
// An event as the CRM's inbound adapter publishes it: source crm-<tag>, origin "twenty", keyed by
// the CRM id, versioned by updatedAt (µs).
common::ChangeEvent crm_event(const common::Config& config, const std::string& twenty_id, int64_t updated_micros,
                              const std::map<std::string, common::Value>& fields);

// The reverse pipeline in background threads: leadsync-capture's loop and leadsync-crm-sink's worker
// (the real Worker with the Twenty target), until stopped or destroyed.
class ReversePipeline {
 public:
  explicit ReversePipeline(const common::Config& config);
  ~ReversePipeline();
  void stop();
  common::Telemetry& sink_telemetry() { return sink_telemetry_; }

 private:
  common::Config config_;
  common::Config sink_config_;
  common::Telemetry capture_telemetry_;
  common::Telemetry sink_telemetry_;
  std::atomic<bool> stop_{false};
  std::thread capture_;
  std::thread sink_;
};

}  // namespace leadsync::testing
