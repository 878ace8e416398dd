#include "common/source_config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/config.h"
#include "common/config_node.h"

namespace leadsync::common {
namespace config_detail {
namespace {

std::chrono::milliseconds duration_of(const Node& n, std::chrono::milliseconds fallback);

// kind: csv. `url` (a common key) is required; the `csv:` section is optional.
SourceSettings parse_csv(const Node& source, const Node& section, SourceConfig&) {
  source.child("url").required_str();
  CsvSettings csv;
  if (!section.defined()) return csv;
  section.expect_map({"encoding"});
  csv.encoding = section.child("encoding").choice<TextEncoding>(
      TextEncoding::kUtf8,
      {{"utf-8", TextEncoding::kUtf8}, {"cp1252", TextEncoding::kCp1252}, {"latin1", TextEncoding::kLatin1}});
  return csv;
}

// kind: sheets. The `sheets:` section is required; `url` (the API's base) is optional.
SourceSettings parse_sheets(const Node& source, const Node& section, SourceConfig& s) {
  if (!section.defined()) section.fail("is required for kind sheets (spreadsheet_id, range, credentials)");
  section.expect_map({"spreadsheet_id", "range", "named_range", "dates", "window_rows", "api_key_env", "token_env",
                      "service_account_env"});
  if (!s.url.empty() && !s.url.starts_with("http://") && !s.url.starts_with("https://")) {
    source.child("url").fail("for kind sheets, url is the API's base URL (http:// or https://), got '" + s.url + "'");
  }
  SheetsSettings sh;
  sh.spreadsheet_id = section.child("spreadsheet_id").required_str();
  sh.range = section.child("range").str_or("");
  sh.named_range = section.child("named_range").str_or("");
  if (sh.range.empty() == sh.named_range.empty()) {
    section.fail("set exactly one of range (A1, e.g. 'Leads!A1:H') and named_range");
  }
  sh.dates = section.child("dates").choice<SheetsDates>(
      SheetsDates::kSerialNumber,
      {{"serial_number", SheetsDates::kSerialNumber}, {"formatted_string", SheetsDates::kFormattedString}});
  sh.window_rows = section.child("window_rows").integer(static_cast<int>(sh.window_rows), 2, 1'000'000);
  int given = 0;
  for (const auto& [key, auth] : {std::pair{"api_key_env", SheetsAuth::kApiKey},
                                  std::pair{"token_env", SheetsAuth::kBearerToken},
                                  std::pair{"service_account_env", SheetsAuth::kServiceAccount}}) {
    if (!section.child(key).defined()) continue;
    ++given;
    sh.auth = auth;
    sh.credential_env = section.child(key).required_str();
  }
  if (given != 1) {
    section.fail("set exactly one of api_key_env, token_env and service_account_env (the name of the environment "
                 "variable that holds the API key, the OAuth bearer token, or the service account key file's path)");
  }
  return sh;
}

// The sheets adapter converts serial dates by the type of the field a column fills.
void bind_sheets(SourceConfig& s, const EntityConfig& entity) {
  auto& sh = std::get<SheetsSettings>(s.settings);
  for (const auto& [column, field] : s.columns) {
    if (const auto* f = entity.field(field)) sh.column_types.emplace(column, f->type);
  }
}

// kind: firestore. No `url`: the `firestore:` section says where the documents are.
SourceSettings parse_firestore(const Node& source, const Node& section, SourceConfig&) {
  if (source.child("url").defined()) {
    source.child("url").fail("a firestore source has no url; set firestore.project and firestore.collection");
  }
  if (!section.defined()) section.fail("is required for kind firestore (project, collection)");
  section.expect_map({"project", "database", "collection", "collection_group", "where", "page_size", "updated_field",
                      "overlap", "full_scan_every", "credentials_env"});
  FirestoreSettings f;
  // Names that go into the request path: no separators, no white space, nothing a URL would read.
  const auto path_safe = [](const Node& n, const std::string& v) {
    if (v.find_first_of("/?#% \t\r\n") != std::string::npos) {
      n.fail("'" + v + "' must not contain '/', '?', '#', '%' or white space");
    }
  };
  f.project = section.child("project").required_str();
  path_safe(section.child("project"), f.project);
  f.database = section.child("database").str_or(f.database);
  if (f.database.empty()) section.child("database").fail("must not be empty");
  path_safe(section.child("database"), f.database);
  f.collection = section.child("collection").required_str();
  std::size_t segments = 0;
  for (std::size_t at = 0; at <= f.collection.size(); ++segments) {
    const auto end = std::min(f.collection.find('/', at), f.collection.size());
    const auto segment = f.collection.substr(at, end - at);
    if (segment.empty()) section.child("collection").fail("'" + f.collection + "' has an empty path segment");
    path_safe(section.child("collection"), segment);
    at = end + 1;
  }
  if (segments % 2 == 0) {
    section.child("collection").fail("'" + f.collection +
                                     "' names a document, not a collection (expected collection[/document/collection]...)");
  }
  f.scope = section.child("collection_group").boolean(false) ? FirestoreScope::kCollectionGroup
                                                              : FirestoreScope::kCollection;
  f.where = section.child("where").str_or("");
  if (!f.where.empty()) {
    const auto parsed = nlohmann::json::parse(f.where, nullptr, false);
    if (parsed.is_discarded() || !parsed.is_object()) {
      section.child("where").fail("expected a structured-query filter as a JSON object, e.g. "
                                  "{\"fieldFilter\": {\"field\": {\"fieldPath\": \"active\"}, \"op\": \"EQUAL\", "
                                  "\"value\": {\"booleanValue\": true}}}");
    }
  }
  f.page_size = section.child("page_size").integer(f.page_size, 1, 10'000);
  f.updated_field = section.child("updated_field").str_or("");
  f.overlap = duration_of(section.child("overlap"), f.overlap);
  f.full_scan_every = duration_of(section.child("full_scan_every"), f.full_scan_every);
  f.credentials_env = section.child("credentials_env").str_or(f.credentials_env);
  if (f.credentials_env.empty()) section.child("credentials_env").fail("must not be empty");
  return f;
}

uint64_t bytes_of(const Node& n, uint64_t fallback);

// kind: twenty. `url` (the REST base) is required; the API key comes from the environment.
SourceSettings parse_twenty(const Node& source, const Node& section, SourceConfig& s) {
  const auto url = source.child("url").required_str();
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    source.child("url").fail("expected Twenty's REST base, e.g. https://crm.example.com/rest, got '" + url + "'");
  }
  // Twenty allows about 100 requests a minute (sources.md): stay under it unless http.rate_limit says otherwise.
  const auto http = source.child("http");
  if (!http.defined() || !http.child("rate_limit").defined()) s.http.max_requests_per_second = 100.0 / 60.0;
  TwentySettings t;
  if (!section.defined()) return t;
  section.expect_map({"object", "api_key_env", "page_size", "webhook"});
  t.object = section.child("object").choice<TwentyObject>(
      TwentyObject::kPeople, {{"people", TwentyObject::kPeople}, {"companies", TwentyObject::kCompanies}});
  t.api_key_env = section.child("api_key_env").str_or(t.api_key_env);
  t.page_size = section.child("page_size").integer(t.page_size, 1, 200);
  const auto hook = section.child("webhook");
  if (!hook.defined()) return t;
  hook.expect_map({"address", "path", "secret_env", "tolerance", "max_body_bytes", "queue", "nonce_cache"});
  t.webhook_enabled = true;
  auto& w = t.webhook;
  w.address = hook.child("address").required_str();
  w.path = hook.child("path").str_or(w.path);
  if (!w.path.starts_with("/")) hook.child("path").fail("must start with '/', got '" + w.path + "'");
  w.secret_env = hook.child("secret_env").required_str();
  w.tolerance = duration_of(hook.child("tolerance"), w.tolerance);
  w.max_body_bytes = bytes_of(hook.child("max_body_bytes"), w.max_body_bytes);
  w.queue = hook.child("queue").integer(w.queue, 1, 1'000'000);
  w.nonce_cache = hook.child("nonce_cache").integer(w.nonce_cache, 100, 10'000'000);
  return t;
}

struct SourceKind {
  const char* name;  // the `kind:` value, and the name of the kind's own section
  SourceSettings (*parse)(const Node& source, const Node& section, SourceConfig& s);
  // Optional: what the kind's settings take from the mapped entity, after parse.
  void (*bind)(SourceConfig& s, const EntityConfig& entity) = nullptr;
};

// Every source kind of this build, one line each.
constexpr SourceKind kSourceKinds[] = {
    {"csv", &parse_csv},
    {"sheets", &parse_sheets, &bind_sheets},
    {"firestore", &parse_firestore},
    {"twenty", &parse_twenty},
};

std::chrono::milliseconds duration_of(const Node& n, std::chrono::milliseconds fallback) {
  if (!n.defined()) return fallback;
  const auto text = n.str();
  const auto d = parse_duration(text);
  if (!d || d->count() <= 0) n.fail("expected a duration like 60s, 5m or 500ms, got '" + text + "'");
  return *d;
}

double fraction_of(const Node& n, double fallback) {
  if (!n.defined()) return fallback;
  const auto text = n.str();
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v < 0 || v > 1) {
    n.fail("expected a fraction between 0 and 1 (e.g. 0.1), got '" + text + "'");
  }
  return v;
}

uint64_t bytes_of(const Node& n, uint64_t fallback) {
  if (!n.defined()) return fallback;
  const auto text = n.str();
  char* end = nullptr;
  const unsigned long long v = std::strtoull(text.c_str(), &end, 10);
  if (text.empty() || text[0] == '-' || *end != '\0' || v == 0 || v > (1ULL << 50)) {
    n.fail("expected a positive number of bytes, got '" + text + "'");
  }
  return v;
}

HttpOptions parse_http(const Node& n) {
  HttpOptions h;
  if (!n.defined()) return h;
  n.expect_map({"connect_timeout", "timeout", "deadline", "attempts", "max_redirects", "max_bytes", "rate_limit"});
  h.connect_timeout = duration_of(n.child("connect_timeout"), h.connect_timeout);
  h.attempt_timeout = duration_of(n.child("timeout"), h.attempt_timeout);
  h.deadline = duration_of(n.child("deadline"), h.deadline);
  h.max_attempts = n.child("attempts").integer(h.max_attempts, 1, 20);
  h.max_redirects = n.child("max_redirects").integer(h.max_redirects, 0, 20);
  h.max_body_bytes = bytes_of(n.child("max_bytes"), h.max_body_bytes);
  if (const auto rate = n.child("rate_limit"); rate.defined()) {
    const auto parsed = parse_request_rate(rate.str());
    if (!parsed) rate.fail("expected requests per time like 60/min, 5/s or 1000/h, got '" + rate.str() + "'");
    h.max_requests_per_second = *parsed;
  }
  return h;
}

}  // namespace

SourceConfig parse_source(const Node& n, const std::map<std::string, EntityConfig>& entities) {
  std::vector<std::string> kinds;
  for (const auto& k : kSourceKinds) kinds.emplace_back(k.name);
  n.child("kind").allow_values(kinds);
  const auto kind_text = n.child("kind").str_or("csv");
  const auto kind = std::find_if(std::begin(kSourceKinds), std::end(kSourceKinds),
                                 [&](const SourceKind& k) { return kind_text == k.name; });
  if (kind == std::end(kSourceKinds)) {
    std::string list;
    for (const auto& k : kinds) list += (list.empty() ? "" : ", ") + k;
    n.child("kind").fail("unknown value '" + kind_text + "' (expected one of: " + list + ")");
  }
  n.expect_map({"name", "kind", "entity", "url", "key_column", "columns", "on_missing", "allow_empty",
                "max_delete_fraction", "allow_mass_delete", "schedule", "http", kind->name});
  SourceConfig s;
  s.name = n.child("name").required_str();
  if (!valid_source_name(s.name)) {
    n.child("name").fail("'" + s.name + "' is not a valid source name (letters, digits, '.', '_' and '-', at most "
                         "100 characters, not starting with '.' or '-')");
  }
  s.kind = kind->name;
  s.entity = n.child("entity").required_str();
  const auto it = entities.find(s.entity);
  if (it == entities.end()) n.child("entity").fail("'" + s.entity + "' is not a configured entity");
  const EntityConfig& entity = it->second;
  s.url = n.child("url").str_or("");
  s.key_column = n.child("key_column").required_str();
  const auto columns = n.child("columns");
  if (!columns.defined()) columns.fail("is required: map source columns to entity fields");
  std::set<std::string> targets;
  columns.each_entry([&](const std::string& column, const Node& cn) {
    const auto field = cn.str();
    if (field != entity.key && !entity.field(field)) {
      cn.fail("'" + field + "' is neither the key nor a field of entity '" + entity.name + "'");
    }
    if (!targets.insert(field).second) cn.fail("field '" + field + "' is mapped from two columns");
    s.columns.emplace_back(column, field);
  });
  const auto key_mapped = std::find_if(s.columns.begin(), s.columns.end(),
                                       [&](const auto& c) { return c.first == s.key_column; });
  if (key_mapped == s.columns.end()) {
    columns.fail("the key column '" + s.key_column + "' must be mapped (to '" + entity.key + "')");
  }
  if (key_mapped->second != entity.key) {
    columns.fail("the key column '" + s.key_column + "' must map to the entity key '" + entity.key + "'");
  }
  // A full image must carry every field: an unmapped field would be silently nulled on each run (R6).
  // Write-back, computed and rules fields are no source's (config.h FieldRole).
  for (const auto& f : entity.fields) {
    if (f.role == FieldRole::kSource && !targets.count(f.name)) {
      columns.fail("field '" + f.name + "' of entity '" + entity.name +
                   "' is not mapped from any column; every field must be mapped");
    }
  }
  s.on_missing = n.child("on_missing").choice<OnMissing>(
      OnMissing::kDelete, {{"delete", OnMissing::kDelete}, {"ignore", OnMissing::kIgnore}});
  s.allow_empty = n.child("allow_empty").boolean(false);
  s.max_delete_fraction = fraction_of(n.child("max_delete_fraction"), s.max_delete_fraction);
  s.allow_mass_delete = n.child("allow_mass_delete").boolean(false);
  s.schedule = duration_of(n.child("schedule"), s.schedule);
  s.http = parse_http(n.child("http"));
  s.settings = kind->parse(n, n.child(kind->name), s);
  if (kind->bind) kind->bind(s, entity);
  return s;
}

void resolve_source_urls(std::vector<SourceConfig>& sources, const std::filesystem::path& base) {
  for (auto& s : sources) {
    const bool remote = s.url.starts_with("http://") || s.url.starts_with("https://");
    if (s.url.empty() || remote) continue;
    if (s.url.starts_with("file://")) s.url = s.url.substr(7);
    if (std::filesystem::path(s.url).is_relative()) s.url = (base / s.url).lexically_normal().string();
  }
}

}  // namespace config_detail

const char* twenty_object_name(TwentyObject object) {
  return object == TwentyObject::kPeople ? "people" : "companies";
}

bool valid_source_name(const std::string& name) {
  if (name.empty() || name.size() > 100 || name[0] == '.' || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace leadsync::common
