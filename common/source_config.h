// The `sources:` part of the configuration (interfaces.md "Configuration"): the keys every source
// has (name, kind, entity, key and column mapping, deletion rules, schedule, HTTP limits) and, per
// kind, its own section (`csv:` for kind csv, `firestore:` for kind firestore). The kinds are listed
// once, in source_config.cc's kSourceKinds, each with the parser of its section;
// producers/registry.cc builds their adapters.
#pragma once

#include <chrono>
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

enum class OnMissing { kDelete, kIgnore };

// kind: csv — a spreadsheet as CSV from a file or an http(s) URL (the common `url` key).
struct CsvSettings {
  TextEncoding encoding = TextEncoding::kUtf8;
};

// kind: firestore — the documents of one collection (sources.md "Firestore REST"), read with
// runQuery. Talks to FIRESTORE_EMULATOR_HOST without auth when that is set, else to Firestore with a
// service-account key.
enum class FirestoreScope { kCollection, kCollectionGroup };
struct FirestoreSettings {
  std::string project;
  std::string database = "(default)";
  // "agents", or a sub-collection "teams/t1/agents"; with kCollectionGroup the last segment names
  // every collection of that id in the database (or under the path before it).
  std::string collection;
  FirestoreScope scope = FirestoreScope::kCollection;
  std::string where;  // a structured query's `where` (a Filter) as JSON text; empty: every document
  int page_size = 1000;
  // A timestamp field of the documents that every write sets (e.g. updatedAt): incremental runs read
  // only documents whose field is newer than the last run's, re-reading `overlap` before it. Empty:
  // every run is a full read with the checksum diff.
  std::string updated_field;
  std::chrono::milliseconds overlap{60'000};
  // Incremental runs cannot see deletions: a full read at least this often finds them.
  std::chrono::milliseconds full_scan_every{86'400'000};
  // Names the environment variable that holds the path of a service-account key file.
  std::string credentials_env = "GOOGLE_APPLICATION_CREDENTIALS";
};

// One alternative per kind; an adapter factory exists for each (producers/registry.cc, checked by
// the compiler through std::visit).
using SourceSettings = std::variant<CsvSettings, FirestoreSettings>;

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
