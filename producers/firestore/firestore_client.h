// Firestore's REST API as the adapter uses it (sources.md "Firestore REST"): structured queries
// (runQuery) and a count (runAggregationQuery) over the configured collection, through the shared
// HTTP client (retries, backoff, timeouts, redaction). With FIRESTORE_EMULATOR_HOST set it talks
// plain HTTP to the emulator without credentials, as Google's client libraries do; otherwise it
// sends a bearer token of the service account whose key file FirestoreSettings::credentials_env
// names (common/google_auth: OAuth2 JWT bearer flow, token cached and refreshed; a 401 fetches a
// new one once).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/google_auth.h"
#include "common/http_client.h"
#include "common/source_config.h"

namespace leadsync::producers::firestore {

struct QueryPage {
  std::vector<nlohmann::json> documents;  // each {"name", "fields", "createTime", "updateTime"}
  std::string read_time;                  // the snapshot the page was read at
};

class FirestoreClient {
 public:
  // Throws std::runtime_error (naming the source) when no emulator is set and no credentials are.
  FirestoreClient(const common::SourceConfig& source, const common::FirestoreSettings& settings);

  // The structured query's `from` and `where` for the configured collection; callers add orderBy,
  // startAt and limit.
  nlohmann::json base_query() const;
  // Runs one structured query, at `read_time` when given (a consistent snapshot across pages).
  QueryPage run_query(const nlohmann::json& structured_query, const std::string& read_time = "");
  // How many documents base_query() matches; nullopt when the server cannot count.
  std::optional<uint64_t> count();

  // Where requests go, for messages ("the emulator at 127.0.0.1:8080" or the project).
  const std::string& endpoint() const { return endpoint_; }

 private:
  nlohmann::json post(const std::string& method, const nlohmann::json& body);
  common::HttpResponse send(const std::string& url, const std::string& body);

  const common::SourceConfig& source_;
  const common::FirestoreSettings& settings_;
  common::HttpClient http_;
  std::string endpoint_;
  std::string parent_url_;  // .../documents[/parent/path], to which ":runQuery" is appended
  std::vector<std::pair<std::string, std::string>> headers_;
  std::unique_ptr<common::GoogleTokenSource> tokens_;  // null for the emulator
};

// Percent-encodes one path segment (document ids may hold any character but '/').
std::string escape_segment(const std::string& segment);

}  // namespace leadsync::producers::firestore
