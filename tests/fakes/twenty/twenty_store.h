// The data behind the fake Twenty server (tests only; sources.md "Twenty CRM"): people and companies
// with Twenty's composite fields, keyset pagination by (updatedAt, id), soft deletes, and writes
// counted per record so that a test can prove how many times leadsync wrote to Twenty.
//
// Timestamps are milliseconds like Twenty's ISO strings ("2026-01-02T03:04:05.123Z"); the store's
// clock never repeats a value, so every change of every record has its own updatedAt and a later
// change always has a larger one (the version leadsync relies on).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace leadsync::fakes::twenty {

using nlohmann::json;

enum class Object { kPeople, kCompanies };

// "people" / "companies" (the REST path), "person" / "company" (nameSingular, webhook event names).
std::string plural_name(Object object);
std::string singular_name(Object object);
std::optional<Object> object_from_plural(const std::string& plural);

std::string format_iso_ms(int64_t ms);              // 2026-01-02T03:04:05.123Z
std::optional<int64_t> parse_iso_ms(const std::string& text);  // Z or +00:00, fraction optional

// Who made a change: the API (leadsync's writes, counted) or the test acting as a Twenty user.
enum class WriteOrigin { kApi, kTest };

// What a change was, for the webhook event name (person.created / .updated / .deleted / .restored).
enum class ChangeKind { kCreated, kUpdated, kDeleted, kRestored, kDestroyed };

struct Change {
  Object object = Object::kPeople;
  ChangeKind kind = ChangeKind::kUpdated;
  json record;                              // the whole record after the change
  std::vector<std::string> updated_fields;  // top-level fields whose value changed (updates only)
};

// A write the store refused: the HTTP status and Twenty's error message.
struct WriteError {
  int status = 400;
  std::string message;
};

struct ListQuery {
  std::string filter;    // Twenty's filter grammar: field[op]:value, and(...), or(...), not(...)
  std::string order_by;  // must start with updatedAt (ascending); id is the tie-breaker
  int limit = 60;
  std::string starting_after;  // an endCursor from an earlier page
};

struct ListResult {
  std::vector<json> records;
  std::size_t total_count = 0;  // records matching the filter, cursor ignored
  bool has_next_page = false;
  std::string start_cursor;
  std::string end_cursor;
};

class TwentyStore {
 public:
  TwentyStore();

  // Reads. A list includes soft-deleted records only when its filter names deletedAt (as Twenty).
  // Throws WriteError (status 400) for a filter, order or cursor it cannot read.
  ListResult list(Object object, const ListQuery& query) const;
  std::optional<json> get(Object object, const std::string& id) const;
  std::size_t size(Object object, bool with_deleted = false) const;
  std::vector<std::string> ids(Object object) const;  // live records, in (updatedAt, id) order

  // Writes. A create may carry its own id (a uuid); a create of an existing id fails (409-like
  // 400, as Twenty's unique violation). Unknown fields or subfields fail with 400, a missing or
  // deleted record with 404. Composite fields are merged subfield by subfield.
  std::variant<json, WriteError> create(Object object, const json& fields, WriteOrigin origin);
  std::variant<json, WriteError> update(Object object, const std::string& id, const json& patch,
                                        WriteOrigin origin);
  // All or nothing, like Twenty's batch endpoint; `upsert` updates the records whose id exists.
  std::variant<std::vector<json>, WriteError> create_many(Object object, const json& records, bool upsert,
                                                          WriteOrigin origin);
  std::variant<json, WriteError> soft_delete(Object object, const std::string& id, WriteOrigin origin);
  std::variant<json, WriteError> restore(Object object, const std::string& id, WriteOrigin origin);
  bool destroy(Object object, const std::string& id);

  // Counters of API writes (creates, updates, deletes made through the REST endpoints).
  int api_writes(const std::string& id) const;  // 0 for an unknown id
  int total_api_writes() const;
  int api_creates() const;
  std::map<std::string, int> api_writes_by_id() const;

  // Called after every change, outside the store's lock (the webhook sender listens here).
  void on_change(std::function<void(const Change&)> listener);

  // Deterministic sample data: person i has name "First<i> Last<i>", email "person<i>@example.com".
  std::vector<std::string> seed_people(int count, WriteOrigin origin = WriteOrigin::kTest);
  std::vector<std::string> seed_companies(int count, WriteOrigin origin = WriteOrigin::kTest);

  // A new, never repeated updatedAt (ms).
  int64_t tick();
  // A workspace's custom field (e.g. `status`, `score`): writable and listed with this default.
  void add_field(Object object, const std::string& name, const json& default_value);

 private:
  struct Stored {
    json data;  // the record as the API shows it (id, createdAt, updatedAt, deletedAt included)
    int64_t updated_ms = 0;
    std::optional<int64_t> deleted_ms;
  };
  struct Table {
    std::map<std::string, Stored> records;
    std::set<std::pair<int64_t, std::string>> order;  // (updatedAt, id)
  };

  Table& table(Object object) { return tables_[static_cast<int>(object)]; }
  const Table& table(Object object) const { return tables_[static_cast<int>(object)]; }
  std::variant<json, WriteError> create_locked(Object object, const json& fields, WriteOrigin origin,
                                               std::vector<Change>& changes);
  std::variant<json, WriteError> update_locked(Object object, const std::string& id, const json& patch,
                                               WriteOrigin origin, std::vector<Change>& changes);
  void set_updated(Table& t, Stored& s, int64_t ms);
  void count_write(const std::string& id, WriteOrigin origin);
  void notify(const std::vector<Change>& changes);
  std::string new_uuid();
  int64_t tick_locked();

  mutable std::mutex mu_;
  Table tables_[2];
  json shapes_[2];  // every writable field with its default (composite fields as objects)
  int64_t last_ms_ = 0;
  uint64_t uuid_state_;
  std::map<std::string, int> api_writes_;
  int api_creates_ = 0;
  std::vector<std::function<void(const Change&)>> listeners_;
};

}  // namespace leadsync::fakes::twenty
