// The `sources:` part of the configuration (interfaces.md "Configuration"): the keys every source
// has (name, kind, entity, key and column mapping, deletion rules, schedule, HTTP limits) and, per
// kind, its own section (`csv:` for kind csv). The kinds are listed once, in source_config.cc's
// kSourceKinds, each with the parser of its section; producers/registry.cc builds their adapters.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/http_client.h"
#include "common/text_encoding.h"

namespace leadsync::common {

struct EntityConfig;
enum class FieldType;  // common/config.h

enum class OnMissing { kDelete, kIgnore };

// kind: csv — a spreadsheet as CSV from a file or an http(s) URL (the common `url` key).
struct CsvSettings {
  TextEncoding encoding = TextEncoding::kUtf8;
};

// kind: twenty — Twenty CRM's REST API (`url` is its REST base, https://HOST/rest), polled by
// updatedAt, plus an optional receiver of its signed webhooks (producers/twenty).
enum class TwentyObject { kPeople, kCompanies };

struct TwentyWebhookSettings {
  std::string address;                   // HOST:PORT the receiver listens on
  std::string path = "/webhooks/twenty";  // the URL path Twenty posts to
  std::string secret_env;                 // names the variable holding the webhook's signing secret
  std::chrono::milliseconds tolerance{300'000};  // a delivery's timestamp may be this far from now
  std::uint64_t max_body_bytes = 1 << 20;
  int queue = 1000;         // deliveries accepted but not yet published; past it 503
  int nonce_cache = 100'000;  // nonces remembered (within the tolerance window) to refuse replays
};

struct TwentySettings {
  TwentyObject object = TwentyObject::kPeople;
  std::string api_key_env = "TWENTY_API_KEY";  // names the variable holding the API key
  int page_size = 60;
  bool webhook_enabled = false;
  TwentyWebhookSettings webhook;
};

// The REST path of an object ("people", "companies").
const char* twenty_object_name(TwentyObject object);

// kind: sheets — a range read with the Google Sheets API v4 values endpoint (sources.md); the common
// `url` key, when set, is the API's base URL (a proxy, the tests' fake). Secrets come from the
// environment: the YAML names only the variable.
enum class SheetsDates { kSerialNumber, kFormattedString };
enum class SheetsAuth { kApiKey, kBearerToken, kServiceAccount };
struct SheetsSettings {
  std::string spreadsheet_id;
  std::string range;        // A1 ("Leads!A1:H", "Leads"); empty when named_range is set
  std::string named_range;  // read in one request (a named range cannot be windowed)
  SheetsDates dates = SheetsDates::kSerialNumber;
  std::int64_t window_rows = 10'000;  // rows per request of an A1 range
  SheetsAuth auth = SheetsAuth::kApiKey;
  // The environment variable holding the API key, the bearer token, or the path of the service
  // account's key file (api_key_env / token_env / service_account_env).
  std::string credential_env;
  // Source column -> the type of the field it fills (from the entity): serial dates are converted
  // only in timestamp and date fields.
  std::map<std::string, FieldType> column_types;
};

// One alternative per kind; an adapter factory exists for each (producers/registry.cc, checked by
// the compiler through std::visit).
using SourceSettings = std::variant<CsvSettings, SheetsSettings, TwentySettings>;

struct SourceConfig {
  std::string name;  // letters, digits, '.', '_', '-' (it names files, metrics labels and run ids)
  std::string kind;  // a name from kSourceKinds
  std::string entity;
  std::string url;  // where the source is, for kinds that have a URL (csv: a path, file:// or http(s)://)
  std::string key_column;
  std::vector<std::pair<std::string, std::string>> columns;  // source column -> entity field, in order
  OnMissing on_missing = OnMissing::kDelete;
  bool allow_empty = false;  // an emptied source deletes everything only when this is true
  // A run may delete at most this fraction of the records the source had before, unless
  // allow_mass_delete (or leadsync-producer --allow-mass-delete) says otherwise.
  double max_delete_fraction = 0.1;
  bool allow_mass_delete = false;
  std::chrono::milliseconds schedule{60'000};
  HttpOptions http;  // for kinds that fetch over HTTP (the `http:` section)
  SourceSettings settings = CsvSettings{};
};

namespace config_detail {
class Node;
SourceConfig parse_source(const Node& n, const std::map<std::string, EntityConfig>& entities);
// Relative local paths of sources are relative to the config file's directory; file:// is stripped.
void resolve_source_urls(std::vector<SourceConfig>& sources, const std::filesystem::path& base);
}  // namespace config_detail

// Letters, digits, '.', '_' and '-', 1 to 100 characters, not starting with '.' or '-'.
bool valid_source_name(const std::string& name);

}  // namespace leadsync::common
