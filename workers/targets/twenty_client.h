// Twenty's REST API as the CRM sink uses it (sources.md "Twenty CRM"): find people by id, create
// them in batches of at most 60 with ids leadsync chooses, update one by PATCH, delete one. Every
// call goes through the shared HTTP client (429/5xx backoff, Retry-After, deadlines) and is paced
// under reverse.twenty.requests_per_minute, so that a burst never runs into the limit at all.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/reverse_config.h"
#include "common/mapping.h"

namespace leadsync::workers {

// The id leadsync gives a record it creates in the CRM: a UUID (version 8, RFC 9562) derived from
// (source, entity, key), so that a replayed create names the same record and cannot duplicate it.
std::string crm_id_for(const std::string& source, const std::string& entity, const std::string& key);

// A typed value as the CRM's JSON, and a CRM field path (name.firstName) read from or set in a record.
nlohmann::json crm_json(const common::Value& v);
const nlohmann::json* crm_field(const nlohmann::json& record, const std::string& path);
void set_crm_field(nlohmann::json& record, const std::string& path, nlohmann::json value);

class TwentyClient {
 public:
  // `api_key` is sent as a bearer token and never logged.
  TwentyClient(const common::TwentyTargetConfig& config, std::string api_key, common::HttpSleep sleep = nullptr);

  // The records among `ids` that exist (not soft-deleted), by id. One request per 60 ids.
  std::map<std::string, nlohmann::json> find(const std::vector<std::string>& ids);
  // Creates `records` (each with its "id") in one request. Throws common::HttpError.
  void create_batch(const nlohmann::json& records);
  void update(const std::string& id, const nlohmann::json& changes);
  void remove(const std::string& id);

  int requests() const { return requests_; }

 private:
  common::HttpResponse call(common::HttpMethod method, const std::string& path, const std::string& body = "");

  common::TwentyTargetConfig config_;
  std::string api_key_;
  common::HttpClient http_;
  std::chrono::steady_clock::duration spacing_;
  std::chrono::steady_clock::time_point next_slot_ = std::chrono::steady_clock::now();
  int requests_ = 0;
};

}  // namespace leadsync::workers
