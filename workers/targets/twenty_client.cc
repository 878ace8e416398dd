#include "workers/targets/twenty_client.h"

#include <xxhash.h>

#include <cstdio>
#include <thread>

namespace leadsync::workers {

using nlohmann::json;

std::string crm_id_for(const std::string& source, const std::string& entity, const std::string& key) {
  const auto name = source + '\0' + entity + '\0' + key;
  const XXH128_hash_t h = XXH3_128bits(name.data(), name.size());
  uint64_t hi = h.high64, lo = h.low64;
  hi = (hi & ~0xF000ULL) | 0x8000ULL;                            // version 8
  lo = (lo & ~(0xC000000000000000ULL)) | 0x8000000000000000ULL;  // RFC 9562 variant
  char out[37];
  std::snprintf(out, sizeof out, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return out;
}

json crm_json(const common::Value& v) {
  switch (v.kind_case()) {
    case common::Value::kBoolValue: return v.bool_value();
    case common::Value::kIntValue: return v.int_value();
    case common::Value::kDoubleValue: return v.double_value();
    case common::Value::kStringValue: return v.string_value();
    case common::Value::kTimestampMicros: {
      auto text = common::format_timestamp_micros(v.timestamp_micros());  // "2026-01-02 03:04:05.123456+00"
      text[10] = 'T';
      return text.substr(0, text.size() - 3) + "Z";
    }
    case common::Value::kStringList: return json(std::vector<std::string>(v.string_list().values().begin(),
                                                                          v.string_list().values().end()));
    case common::Value::kJsonValue: return json::parse(v.json_value(), nullptr, false);
    default: return nullptr;
  }
}

const json* crm_field(const json& record, const std::string& path) {
  const json* at = &record;
  std::size_t from = 0;
  for (;;) {
    const auto dot = path.find('.', from);
    const auto part = path.substr(from, dot == std::string::npos ? std::string::npos : dot - from);
    if (!at->is_object()) return nullptr;
    const auto it = at->find(part);
    if (it == at->end()) return nullptr;
    at = &*it;
    if (dot == std::string::npos) return at;
    from = dot + 1;
  }
}

void set_crm_field(json& record, const std::string& path, json value) {
  json* at = &record;
  std::size_t from = 0;
  for (auto dot = path.find('.'); dot != std::string::npos; dot = path.find('.', from)) {
    at = &(*at)[path.substr(from, dot - from)];
    from = dot + 1;
  }
  (*at)[path.substr(from)] = std::move(value);
}

TwentyClient::TwentyClient(const common::TwentyTargetConfig& config, std::string api_key, common::HttpSleep sleep)
    : config_(config),
      api_key_(std::move(api_key)),
      http_(
          [&] {
            common::HttpOptions o;
            o.attempt_timeout = config.timeout;
            o.deadline = config.timeout * config.attempts + std::chrono::seconds(60);
            o.max_attempts = config.attempts;
            o.max_body_bytes = 64ULL << 20;
            return o;
          }(),
          std::move(sleep)),
      spacing_(std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::minutes(1)) /
               config.requests_per_minute) {}

common::HttpResponse TwentyClient::call(common::HttpMethod method, const std::string& path, const std::string& body) {
  // Pacing: one request per slot, the slots spread evenly over the minute.
  const auto now = std::chrono::steady_clock::now();
  if (next_slot_ > now) std::this_thread::sleep_until(next_slot_);
  next_slot_ = std::max(now, next_slot_) + spacing_;
  ++requests_;
  common::HttpRequest request;
  request.method = method;
  request.url = config_.url + path;
  request.headers = {{"Authorization", "Bearer " + api_key_}, {"Content-Type", "application/json"}};
  request.body = body;
  return http_.fetch(request);
}

std::map<std::string, json> TwentyClient::find(const std::vector<std::string>& ids) {
  std::map<std::string, json> out;
  for (std::size_t i = 0; i < ids.size(); i += 60) {
    std::string list;
    for (std::size_t j = i; j < std::min(ids.size(), i + 60); ++j) {
      list += (list.empty() ? "%22" : ",%22") + ids[j] + "%22";
    }
    // id[in]:["…","…"], URL-encoded by hand; ids are UUIDs (hex and -), which need no escaping.
    const auto r = call(common::HttpMethod::kGet, config_.object + "?limit=60&filter=id%5Bin%5D%3A%5B" + list + "%5D");
    const auto doc = json::parse(r.body);
    for (const auto& rec : doc.at("data").at(config_.object)) {
      if (rec.contains("deletedAt") && !rec.at("deletedAt").is_null()) continue;
      out[rec.at("id").get<std::string>()] = rec;
    }
  }
  return out;
}

void TwentyClient::create_batch(const json& records) {
  call(common::HttpMethod::kPost, "batch/" + config_.object, records.dump());
}

void TwentyClient::update(const std::string& id, const json& changes) {
  call(common::HttpMethod::kPatch, config_.object + "/" + id, changes.dump());
}

void TwentyClient::remove(const std::string& id) { call(common::HttpMethod::kDelete, config_.object + "/" + id); }

}  // namespace leadsync::workers
