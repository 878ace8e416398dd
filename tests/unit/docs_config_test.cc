// docs/configuration.md must cover every key the config loader accepts. The loader itself reports the
// keys (common::accepted_config_keys records every expect_map() while it parses), so a key added to
// common/config.cc without a line in the reference fails here, and so does a key the maximal config
// below forgets to set (its sub-keys would otherwise never be visited).
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/config.h"

namespace leadsync::common {
namespace {

// Sets every key the loader accepts, with one source of every kind, so that every section is visited.
const char* kMaximal = R"(
kafka:
  brokers: 127.0.0.1:9092
  topic: leadsync.changes
  partitions: 12
  group: leadsync-workers
  retry: {attempts: 3, base_ms: 1000, max_ms: 10000}
  dlq_topic: leadsync.changes.dlq
  properties: {security.protocol: plaintext}
postgres:
  url: postgresql://localhost/leadsync
  schema: public
worker:
  max_batch: 5000
  max_wait_ms: 20
entities:
  lead:
    table: leads
    key: lead_id
    match_on: [email]
    audit: true
    deletes: soft
    partial_events: false
    fields:
      email:        {type: text, required: true, normalize: lower_trim}
      lead_sources: {type: text_list, coerce: wrap_scalar, separator: ";"}
sources:
  - name: sales-sheet
    kind: csv
    entity: lead
    url: leads.csv
    key_column: "Lead ID"
    columns: {"Lead ID": lead_id, "Email": email, "Lead sources": lead_sources}
    on_missing: delete
    allow_empty: false
    max_delete_fraction: 0.1
    allow_mass_delete: false
    schedule: 60s
    http: {connect_timeout: 10s, timeout: 5m, deadline: 10m, attempts: 5, max_redirects: 5, max_bytes: 1073741824}
    csv: {encoding: utf-8}
)";

std::string reference() {
  const std::string path = std::string(LEADSYNC_SOURCE_DIR) + "/docs/configuration.md";
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "cannot read " << path;
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(DocsConfig, EveryAcceptedKeyIsInTheReference) {
  const auto schema = accepted_config_keys(kMaximal);
  const auto doc = reference();
  ASSERT_GT(schema.keys.size(), 30u) << "the loader reported too few keys; is the registry filled?";
  for (const auto& key : schema.keys) {
    EXPECT_TRUE(doc.find("`" + key + "`") != std::string::npos)
        << "docs/configuration.md does not document the config key `" << key << "`";
  }
}

TEST(DocsConfig, EveryAcceptedValueOfAnEnumeratedKeyIsInTheReference) {
  const auto schema = accepted_config_keys(kMaximal);
  const auto doc = reference();
  ASSERT_TRUE(schema.values.count("entities.<name>.fields.<name>.type"));
  for (const auto& [key, values] : schema.values) {
    for (const auto& value : values) {
      EXPECT_TRUE(doc.find("`" + value + "`") != std::string::npos)
          << "docs/configuration.md does not document the value `" << value << "` of `" << key << "`";
    }
  }
}

// Keeps the test above honest: a key the maximal config does not set may hide a section of its own.
TEST(DocsConfig, TheMaximalConfigSetsEveryAcceptedKey) {
  const auto schema = accepted_config_keys(kMaximal);
  for (const auto& key : schema.keys) {
    EXPECT_TRUE(schema.present.count(key)) << "kMaximal in this test does not set `" << key
                                           << "`: add it, so that everything below it is checked too";
  }
  const auto kinds = schema.values.find("sources[].kind");
  ASSERT_NE(kinds, schema.values.end());
  const auto config = parse_config(kMaximal);
  for (const auto& kind : kinds->second) {
    bool used = false;
    for (const auto& s : config.sources) used = used || s.kind == kind;
    EXPECT_TRUE(used) << "kMaximal has no source of kind `" << kind << "`: its keys would not be visited";
  }
}

}  // namespace
}  // namespace leadsync::common
