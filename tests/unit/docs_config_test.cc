// docs/configuration.md must cover every key the config loader accepts. The loader itself reports the
// keys (common::accepted_config_keys records every expect_map() while it parses), so a key added to
// common/config.cc without a line in the reference fails here, and so does a key the maximal config
// below forgets to set (its sub-keys would otherwise never be visited).
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
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
  secrets_env: {sasl.password: KAFKA_PASSWORD}
  allow_unsafe_producer: false
postgres:
  url: postgresql://localhost/leadsync
  schema: public
  statement_timeout_ms: 60000
  lock_timeout_ms: 10000
  idle_in_transaction_timeout_ms: 60000
worker:
  max_batch: 5000
  max_wait_ms: 20
  connections: 2
  instance_id: worker-0
runs:
  heartbeat_interval: 2s
  checkpoint_interval: 10s
api:
  address: 127.0.0.1:8070
  token_env: LEADSYNC_API_TOKEN
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
      twenty_id:    {type: text, role: write_back}
  # Scoring needs no source of its own to be checked: an entity with rules and computed fields.
  scored:
    key: id
    fields:
      email:        {type: text, normalize: lower_trim}
      lead_sources: {type: text_list}
      status:       {type: text}
      score:        {type: int}
      updated_at:   {type: timestamp}
      priority:     {type: int, role: rules}
      segment:      {type: text, role: rules}
    scoring:
      field: priority
      floor: 0
      cap: 100
      rules:
        - {name: won, points: 10, when: {field: status, equals: won}}
        - {name: open, points: 5, when: {field: status, in: [new, open]}}
        - {name: referral, points: 5, when: {field: lead_sources, contains: referral}}
        - {name: acme, points: 5, when: {field: email, matches: '@acme\.'}}
        - {name: mid, points: 5, when: {all: [{field: score, gt: 1}, {field: score, gte: 2}, {field: score, lt: 9}, {field: score, lte: 8}]}}
        - {name: either, points: 5, when: {any: [{field: email, exists: true}, {not: {field: updated_at, age_days: {gt: 1}}}]}}
        - {name: g, points: 1, when: {field: updated_at, age_days: {gte: 1}}}
        - {name: h, points: 1, when: {field: updated_at, age_days: {lt: 1}}}
        - {name: i, points: 1, when: {field: updated_at, age_days: {lte: 1}}}
    segments:
      field: segment
      default: other
      rules:
        - {name: hot, when: {field: priority, gte: 50}}
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
    http: {connect_timeout: 10s, timeout: 5m, deadline: 10m, attempts: 5, max_redirects: 5, max_bytes: 1073741824,
           rate_limit: 60/min}
    csv: {encoding: utf-8}
  - name: leads-api
    kind: sheets
    entity: lead
    url: https://sheets.googleapis.com
    key_column: "Lead ID"
    columns: {"Lead ID": lead_id, "Email": email, "Lead sources": lead_sources}
    sheets: {spreadsheet_id: abc, range: "Leads!A1:C", dates: serial_number, window_rows: 10000,
             api_key_env: SHEETS_API_KEY}
  - name: leads-api-named
    kind: sheets
    entity: lead
    key_column: "Lead ID"
    columns: {"Lead ID": lead_id, "Email": email, "Lead sources": lead_sources}
    sheets: {spreadsheet_id: abc, named_range: LeadTable, dates: formatted_string, token_env: SHEETS_TOKEN}
  - name: leads-api-sa
    kind: sheets
    entity: lead
    key_column: "Lead ID"
    columns: {"Lead ID": lead_id, "Email": email, "Lead sources": lead_sources}
    sheets: {spreadsheet_id: abc, range: Leads, service_account_env: GOOGLE_APPLICATION_CREDENTIALS}
  - name: admin-agents
    kind: firestore
    entity: lead
    key_column: __name__
    columns: {__name__: lead_id, email: email, leadSources: lead_sources}
    firestore:
      project: my-project
      database: (default)
      collection: agents
      collection_group: false
      where: '{"fieldFilter": {"field": {"fieldPath": "active"}, "op": "EQUAL", "value": {"booleanValue": true}}}'
      page_size: 1000
      updated_field: updatedAt
      overlap: 60s
      full_scan_every: 24h
      credentials_env: GOOGLE_APPLICATION_CREDENTIALS
  - name: crm-people
    kind: twenty
    entity: lead
    url: https://crm.example.com/rest
    key_column: id
    columns: {id: lead_id, emails.primaryEmail: email, city: lead_sources}
    twenty:
      object: people
      api_key_env: TWENTY_API_KEY
      page_size: 60
      webhook: {address: 0.0.0.0:8090, path: /webhooks/twenty, secret_env: TWENTY_WEBHOOK_SECRET, tolerance: 5m,
                max_body_bytes: 1048576, queue: 1000, nonce_cache: 100000}
reverse:
  source: app-db
  entity: lead
  topic: leadsync.reverse
  dlq_topic: leadsync.reverse.dlq
  group: leadsync-reverse
  poll_interval: 200ms
  capture_batch: 1000
  crm_origin: twenty
  crm_sources: [sales-sheet]
  fields: {email: emails.primaryEmail}
  id_field: twenty_id
  priority: {email: crm, lead_sources: postgres}
  twenty: {url: "http://127.0.0.1:3000/rest/", api_key_env: TWENTY_API_KEY, object: people, batch_size: 60,
           requests_per_minute: 100, timeout: 30s, attempts: 5}
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

// Every configuration example in docs/ is accepted by the loader, so that an example cannot keep a key
// that was renamed or removed. A fragment without `entities:` gets a minimal one.
TEST(DocsConfig, EveryYamlExampleInTheDocsParses) {
  int examples = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(LEADSYNC_SOURCE_DIR) + "/docs")) {
    if (entry.path().extension() != ".md") continue;
    std::ifstream in(entry.path());
    std::string line, block;
    int line_no = 0, start = 0;
    bool in_yaml = false;
    while (std::getline(in, line)) {
      ++line_no;
      if (!in_yaml && line == "```yaml") {
        in_yaml = true;
        block.clear();
        start = line_no;
      } else if (in_yaml && line == "```") {
        in_yaml = false;
        if (block.find("entities:") == std::string::npos) {
          block += "entities:\n  e:\n    key: id\n    fields: {f: {type: text}}\n";
        }
        ++examples;
        try {
          parse_config(block, entry.path().filename().string());
        } catch (const std::exception& e) {
          ADD_FAILURE() << entry.path().filename().string() << ":" << start << ": " << e.what();
        }
      } else if (in_yaml) {
        block += line + "\n";
      }
    }
  }
  EXPECT_GE(examples, 5) << "fewer configuration examples in docs/ than expected: is the path right?";
}

// Walks kMaximal independently of the loader and finds, for every key it sets, the schema path the
// loader registered for it. A parser that stopped reporting its keys (a section parsed by a copy of
// the walker without the registry) fails here instead of silently dropping out of the check above.
void expect_registered(const YAML::Node& node, std::string schema, const ConfigSchema& registered,
                       const std::string& concrete) {
  // A recursive structure (a rule's condition) is registered once, under the path the loader gave it.
  if (const auto alias = registered.aliases.find(schema); alias != registered.aliases.end()) schema = alias->second;
  auto has_prefix = [&](const std::string& prefix) {
    const auto it = registered.keys.lower_bound(prefix);
    return it != registered.keys.end() && it->rfind(prefix, 0) == 0;
  };
  auto join = [](const std::string& parent, const std::string& key) {
    return parent.empty() ? key : parent + "." + key;
  };
  if (node.IsSequence()) {
    for (std::size_t i = 0; i < node.size(); ++i) {
      expect_registered(node[i], schema + "[]", registered, concrete + "[" + std::to_string(i) + "]");
    }
    return;
  }
  if (!node.IsMap()) return;
  for (const auto& kv : node) {
    const auto key = kv.first.as<std::string>();
    const auto where = join(concrete, key);
    if (registered.keys.count(join(schema, key))) {
      expect_registered(kv.second, join(schema, key), registered, where);
    } else if (has_prefix(join(schema, "<name>") + ".")) {
      expect_registered(kv.second, join(schema, "<name>"), registered, where);  // an entity, a field
    } else {
      // Otherwise only a user-named scalar entry of a registered mapping (a column, a Kafka property).
      EXPECT_TRUE(registered.keys.count(schema) && kv.second.IsScalar())
          << "kMaximal sets `" << where << "` but the loader reported no key for it: does every "
          << "parser record its keys (expect_map of the walker in common/config.cc)?";
    }
  }
}

TEST(DocsConfig, TheLoaderReportsEveryKeyTheMaximalConfigSets) {
  const auto schema = accepted_config_keys(kMaximal);
  expect_registered(YAML::Load(kMaximal), "", schema, "");
}

}  // namespace
}  // namespace leadsync::common
