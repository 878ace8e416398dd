// Test support for kind: firestore against the real Firestore emulator of the local cluster
// (dev/cluster up; FIRESTORE_EMULATOR_HOST in .local/env): documents written in batches through the
// REST API's :commit (up to 500 writes each, Firestore's own limit), each test in a project of its
// own so that tests never see each other's documents.
#pragma once

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/http_client.h"

namespace leadsync::testing {

// A test's tag (unique_tag) as a project id: letters, digits and '-'.
inline std::string project_id(std::string tag) {
  for (auto& c : tag) c = c == '_' ? '-' : c;
  return tag;
}

class FirestoreEmulator {
 public:
  // `project` must be unique to the test (letters, digits, '-').
  explicit FirestoreEmulator(std::string project) : project_(std::move(project)) {
    const char* host = std::getenv("FIRESTORE_EMULATOR_HOST");
    host_ = host ? host : "";
  }

  bool available() const { return !host_.empty(); }
  const std::string& project() const { return project_; }
  std::string name(const std::string& path) const {
    return "projects/" + project_ + "/databases/(default)/documents/" + path;
  }

  // Sets documents (path → fields as Firestore typed JSON), creating or replacing them.
  void set(const std::vector<std::pair<std::string, nlohmann::json>>& documents) {
    nlohmann::json writes = nlohmann::json::array();
    for (const auto& [path, fields] : documents) {
      writes.push_back({{"update", {{"name", name(path)}, {"fields", fields}}}});
      if (writes.size() == kBatch) flush(writes);
    }
    flush(writes);
  }
  void remove(const std::vector<std::string>& paths) {
    nlohmann::json writes = nlohmann::json::array();
    for (const auto& path : paths) {
      writes.push_back({{"delete", name(path)}});
      if (writes.size() == kBatch) flush(writes);
    }
    flush(writes);
  }

  // A `firestore` source of `entity` reading `collection` of this project.
  common::SourceConfig source(const std::string& source_name, const std::string& entity, const std::string& collection,
                              std::vector<std::pair<std::string, std::string>> columns) const {
    common::SourceConfig s;
    s.name = source_name;
    s.kind = "firestore";
    s.entity = entity;
    s.key_column = "__name__";
    s.columns = std::move(columns);
    common::FirestoreSettings f;
    f.project = project_;
    f.collection = collection;
    s.settings = f;
    return s;
  }

 private:
  static constexpr std::size_t kBatch = 500;

  void flush(nlohmann::json& writes) {
    if (writes.empty()) return;
    common::HttpClient http;
    http.fetch({common::HttpMethod::kPost,
                "http://" + host_ + "/v1/projects/" + project_ + "/databases/(default)/documents:commit",
                {{"Content-Type", "application/json"}},
                nlohmann::json{{"writes", writes}}.dump()});
    writes = nlohmann::json::array();
  }

  std::string project_;
  std::string host_;
};

// Typed-value builders, as the REST API spells them.
inline nlohmann::json fs_string(const std::string& s) { return {{"stringValue", s}}; }
inline nlohmann::json fs_null() { return {{"nullValue", nullptr}}; }
inline nlohmann::json fs_timestamp(const std::string& rfc3339) { return {{"timestampValue", rfc3339}}; }
inline nlohmann::json fs_strings(const std::vector<std::string>& items) {
  nlohmann::json values = nlohmann::json::array();
  for (const auto& i : items) values.push_back(fs_string(i));
  return items.empty() ? nlohmann::json{{"arrayValue", nlohmann::json::object()}}
                       : nlohmann::json{{"arrayValue", {{"values", values}}}};
}
inline nlohmann::json fs_map(const nlohmann::json& fields) { return {{"mapValue", {{"fields", fields}}}}; }

}  // namespace leadsync::testing
