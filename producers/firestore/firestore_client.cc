#include "producers/firestore/firestore_client.h"

#include <cstdlib>
#include <stdexcept>

namespace leadsync::producers::firestore {
namespace {

using nlohmann::json;

std::string env(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v ? v : "";
}

// The emulator's address, checked: it goes into a URL.
std::string emulator_host(const common::SourceConfig& source) {
  auto host = env("FIRESTORE_EMULATOR_HOST");
  if (host.empty()) return host;
  if (host.find_first_of("/?#@ ") != std::string::npos) {
    throw std::runtime_error("source " + source.name + ": FIRESTORE_EMULATOR_HOST must be HOST:PORT, got '" + host +
                             "'");
  }
  return host;
}

}  // namespace

std::string escape_segment(const std::string& segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const unsigned char c : segment) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '(' || c == ')') {
      out.push_back(static_cast<char>(c));
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

FirestoreClient::FirestoreClient(const common::SourceConfig& source, const common::FirestoreSettings& settings)
    : source_(source), settings_(settings), http_(source.http) {
  const auto host = emulator_host(source);
  std::string base;
  if (!host.empty()) {
    base = "http://" + host + "/v1";
    endpoint_ = "the Firestore emulator at " + host;
  } else {
    const auto key_file = env(settings.credentials_env);
    if (key_file.empty()) {
      throw std::runtime_error("source " + source.name + ": " + settings.credentials_env +
                               " is not set: it must hold the path of a service-account key file (or set "
                               "FIRESTORE_EMULATOR_HOST to use the emulator)");
    }
    tokens_ = std::make_unique<common::GoogleTokenSource>(common::load_service_account_key(key_file),
                                                          common::kDatastoreScope, source.http);
    base = "https://firestore.googleapis.com/v1";
    endpoint_ = "Firestore (project " + settings.project + ")";
  }
  parent_url_ = base + "/projects/" + escape_segment(settings.project) + "/databases/" +
                escape_segment(settings.database) + "/documents";
  // The parent of a sub-collection is its document: teams/t1/agents → .../documents/teams/t1.
  const auto cut = settings.collection.rfind('/');
  if (cut != std::string::npos) {
    std::size_t at = 0;
    const auto parent = settings.collection.substr(0, cut);
    while (at <= parent.size()) {
      const auto end = std::min(parent.find('/', at), parent.size());
      parent_url_ += "/" + escape_segment(parent.substr(at, end - at));
      at = end + 1;
    }
  }
  headers_.emplace_back("Content-Type", "application/json");
}

json FirestoreClient::base_query() const {
  const auto cut = settings_.collection.rfind('/');
  const auto id = cut == std::string::npos ? settings_.collection : settings_.collection.substr(cut + 1);
  json q;
  q["from"] = json::array({json{{"collectionId", id},
                                {"allDescendants", settings_.scope == common::FirestoreScope::kCollectionGroup}}});
  if (!settings_.where.empty()) q["where"] = json::parse(settings_.where);
  return q;
}

common::HttpResponse FirestoreClient::send(const std::string& url, const std::string& body) {
  auto headers = headers_;
  if (tokens_) headers.emplace_back("Authorization", tokens_->authorization());
  return http_.fetch({common::HttpMethod::kPost, url, std::move(headers), body});
}

json FirestoreClient::post(const std::string& method, const json& body) {
  const auto url = parent_url_ + ":" + method;
  const auto text = body.dump();
  common::HttpResponse response;
  try {
    response = send(url, text);
  } catch (const common::HttpError& e) {
    // A token revoked or expired early: one more attempt with a fresh one.
    if (!tokens_ || e.status() != 401) {
      // The HTTP client keeps no error body: the request says what Firestore refused.
      throw std::runtime_error("source " + source_.name + ": " + e.what() + " (request " + text + ")");
    }
    tokens_->invalidate();
    response = send(url, text);
  }
  auto parsed = json::parse(response.body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_array()) {
    throw std::runtime_error("source " + source_.name + ": " + method + " on " + endpoint_ +
                             " did not answer with a JSON array");
  }
  for (const auto& element : parsed) {
    if (element.contains("error")) {
      throw std::runtime_error("source " + source_.name + ": " + method + " on " + endpoint_ +
                               " failed: " + element["error"].dump());
    }
  }
  return parsed;
}

QueryPage FirestoreClient::run_query(const json& structured_query, const std::string& read_time) {
  json body{{"structuredQuery", structured_query}};
  if (!read_time.empty()) body["readTime"] = read_time;
  QueryPage page;
  for (auto& element : post("runQuery", body)) {
    if (page.read_time.empty() && element.contains("readTime")) page.read_time = element["readTime"].get<std::string>();
    // An element without a document only reports progress (or that nothing matched).
    if (auto doc = element.find("document"); doc != element.end()) page.documents.push_back(std::move(*doc));
  }
  return page;
}

std::optional<uint64_t> FirestoreClient::count() {
  json body{{"structuredAggregationQuery",
             {{"structuredQuery", base_query()}, {"aggregations", json::array({{{"alias", "n"}, {"count", json::object()}}})}}}};
  try {
    for (const auto& element : post("runAggregationQuery", body)) {
      const auto n = element.value("/result/aggregateFields/n/integerValue"_json_pointer, std::string());
      if (!n.empty()) return std::stoull(n);
    }
  } catch (const std::exception&) {
    // Progress only: a server that cannot count still serves the read.
  }
  return std::nullopt;
}

}  // namespace leadsync::producers::firestore
