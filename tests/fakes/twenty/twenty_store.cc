#include "tests/fakes/twenty/twenty_store.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <random>

namespace leadsync::fakes::twenty {
namespace {

// Twenty's standard fields of the two objects (the writable ones; id and the timestamps are the
// store's). Composite fields are objects; their subfields are the only keys a write may use.
json person_shape() {
  return {
      {"name", {{"firstName", ""}, {"lastName", ""}}},
      {"emails", {{"primaryEmail", ""}, {"additionalEmails", nullptr}}},
      {"phones",
       {{"primaryPhoneNumber", ""},
        {"primaryPhoneCountryCode", ""},
        {"primaryPhoneCallingCode", ""},
        {"additionalPhones", nullptr}}},
      {"linkedinLink", {{"primaryLinkUrl", ""}, {"primaryLinkLabel", ""}, {"secondaryLinks", nullptr}}},
      {"jobTitle", ""},
      {"city", ""},
      {"avatarUrl", ""},
      {"position", 0},
      {"companyId", nullptr},
      {"createdBy", {{"source", "API"}, {"workspaceMemberId", nullptr}, {"name", ""}}},
  };
}

json company_shape() {
  return {
      {"name", ""},
      {"domainName", {{"primaryLinkUrl", ""}, {"primaryLinkLabel", ""}, {"secondaryLinks", nullptr}}},
      {"employees", nullptr},
      {"address",
       {{"addressStreet1", ""},
        {"addressStreet2", ""},
        {"addressCity", ""},
        {"addressState", ""},
        {"addressCountry", ""},
        {"addressPostcode", ""},
        {"addressLat", nullptr},
        {"addressLng", nullptr}}},
      {"annualRecurringRevenue", {{"amountMicros", nullptr}, {"currencyCode", ""}}},
      {"linkedinLink", {{"primaryLinkUrl", ""}, {"primaryLinkLabel", ""}, {"secondaryLinks", nullptr}}},
      {"idealCustomerProfile", false},
      {"position", 0},
      {"accountOwnerId", nullptr},
      {"createdBy", {{"source", "API"}, {"workspaceMemberId", nullptr}, {"name", ""}}},
  };
}

bool is_store_field(const std::string& name) {
  return name == "id" || name == "createdAt" || name == "updatedAt" || name == "deletedAt";
}

// Merges `patch` into `record` under `shape`; returns the changed top-level fields, or an error.
std::variant<std::vector<std::string>, WriteError> merge_fields(const std::string& object, const json& shape,
                                                                json& record, const json& patch) {
  if (!patch.is_object()) return WriteError{400, "the body of a " + object + " write must be a JSON object"};
  std::vector<std::string> changed;
  json merged = record;
  for (const auto& [name, value] : patch.items()) {
    if (is_store_field(name)) {
      if (name == "id") continue;  // the create path took it already; an update's id is the path's
      return WriteError{400, "field \"" + name + "\" of object " + object + " is read-only"};
    }
    auto it = shape.find(name);
    if (it == shape.end()) return WriteError{400, "Object " + object + " doesn't have any \"" + name + "\" field."};
    if (it->is_object()) {
      if (!value.is_object()) return WriteError{400, "composite field \"" + name + "\" must be an object"};
      for (const auto& [sub, sub_value] : value.items()) {
        if (!it->contains(sub)) {
          return WriteError{400, "composite field \"" + name + "\" has no subfield \"" + sub + "\""};
        }
        merged[name][sub] = sub_value;
      }
    } else {
      merged[name] = value;
    }
    if (merged[name] != record[name]) changed.push_back(name);
  }
  record = std::move(merged);
  return changed;
}

}  // namespace

std::string plural_name(Object object) { return object == Object::kPeople ? "people" : "companies"; }
std::string singular_name(Object object) { return object == Object::kPeople ? "person" : "company"; }

std::optional<Object> object_from_plural(const std::string& plural) {
  if (plural == "people") return Object::kPeople;
  if (plural == "companies") return Object::kCompanies;
  return std::nullopt;
}

std::string format_iso_ms(int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms % 1000));
  return buf;
}

std::optional<int64_t> parse_iso_ms(const std::string& text) {
  std::tm tm{};
  int consumed = 0;
  if (std::sscanf(text.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
    return std::nullopt;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  int64_t ms = static_cast<int64_t>(timegm(&tm)) * 1000;
  std::size_t i = static_cast<std::size_t>(consumed);
  if (i < text.size() && text[i] == '.') {
    int64_t scale = 100;
    for (++i; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      ms += (text[i] - '0') * scale;
      scale /= 10;
    }
  }
  std::string zone = text.substr(i);
  if (zone != "Z" && zone != "+00:00" && !zone.empty()) return std::nullopt;
  return ms;
}

TwentyStore::TwentyStore() : uuid_state_(std::random_device{}()) {
  shapes_[static_cast<int>(Object::kPeople)] = person_shape();
  shapes_[static_cast<int>(Object::kCompanies)] = company_shape();
}

void TwentyStore::add_field(Object object, const std::string& name, const json& default_value) {
  std::lock_guard lock(mu_);
  shapes_[static_cast<int>(object)][name] = default_value;
  for (auto& [id, s] : table(object).records) {
    if (!s.data.contains(name)) s.data[name] = default_value;
  }
}

int64_t TwentyStore::tick_locked() {
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  last_ms_ = std::max(now, last_ms_ + 1);
  return last_ms_;
}

int64_t TwentyStore::tick() {
  std::lock_guard lock(mu_);
  return tick_locked();
}

std::string TwentyStore::new_uuid() {
  std::mt19937_64 gen(uuid_state_++);
  uint64_t hi = gen(), lo = gen();
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;                      // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | (uint64_t{0x8} << 60);  // variant 10
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

void TwentyStore::set_updated(Table& t, Stored& s, int64_t ms) {
  t.order.erase({s.updated_ms, s.data["id"].get<std::string>()});
  s.updated_ms = ms;
  s.data["updatedAt"] = format_iso_ms(ms);
  t.order.insert({ms, s.data["id"].get<std::string>()});
}

void TwentyStore::count_write(const std::string& id, WriteOrigin origin) {
  if (origin == WriteOrigin::kApi) ++api_writes_[id];
}

void TwentyStore::notify(const std::vector<Change>& changes) {
  std::vector<std::function<void(const Change&)>> listeners;
  {
    std::lock_guard lock(mu_);
    listeners = listeners_;
  }
  for (const auto& change : changes) {
    for (const auto& listener : listeners) listener(change);
  }
}

void TwentyStore::on_change(std::function<void(const Change&)> listener) {
  std::lock_guard lock(mu_);
  listeners_.push_back(std::move(listener));
}

std::variant<json, WriteError> TwentyStore::create_locked(Object object, const json& fields, WriteOrigin origin,
                                                          std::vector<Change>& changes) {
  if (!fields.is_object()) return WriteError{400, "a " + singular_name(object) + " must be a JSON object"};
  Table& t = table(object);
  std::string id;
  if (fields.contains("id")) {
    if (!fields["id"].is_string() || fields["id"].get<std::string>().size() != 36) {
      return WriteError{400, "id must be a uuid"};
    }
    id = fields["id"].get<std::string>();
    if (t.records.count(id)) {
      return WriteError{400, "duplicate key value violates unique constraint on " + singular_name(object) + " id " + id};
    }
  } else {
    id = new_uuid();
  }
  json record = shapes_[static_cast<int>(object)];
  auto merged = merge_fields(singular_name(object), shapes_[static_cast<int>(object)], record, fields);
  if (auto* error = std::get_if<WriteError>(&merged)) return *error;
  int64_t now = tick_locked();
  record["id"] = id;
  record["createdAt"] = format_iso_ms(now);
  record["deletedAt"] = nullptr;
  Stored s{std::move(record), 0, std::nullopt};
  set_updated(t, s, now);
  auto& stored = t.records[id] = std::move(s);
  count_write(id, origin);
  if (origin == WriteOrigin::kApi) ++api_creates_;
  changes.push_back({object, ChangeKind::kCreated, stored.data, {}});
  return stored.data;
}

std::variant<json, WriteError> TwentyStore::update_locked(Object object, const std::string& id, const json& patch,
                                                          WriteOrigin origin, std::vector<Change>& changes) {
  Table& t = table(object);
  auto it = t.records.find(id);
  if (it == t.records.end() || it->second.deleted_ms) {
    return WriteError{404, "Record " + id + " of object " + singular_name(object) + " not found"};
  }
  json data = it->second.data;
  auto merged = merge_fields(singular_name(object), shapes_[static_cast<int>(object)], data, patch);
  if (auto* error = std::get_if<WriteError>(&merged)) return *error;
  it->second.data = std::move(data);
  set_updated(t, it->second, tick_locked());
  count_write(id, origin);
  changes.push_back({object, ChangeKind::kUpdated, it->second.data, std::get<std::vector<std::string>>(merged)});
  return it->second.data;
}

std::variant<json, WriteError> TwentyStore::create(Object object, const json& fields, WriteOrigin origin) {
  std::vector<Change> changes;
  std::variant<json, WriteError> result;
  {
    std::lock_guard lock(mu_);
    result = create_locked(object, fields, origin, changes);
  }
  notify(changes);
  return result;
}

std::variant<json, WriteError> TwentyStore::update(Object object, const std::string& id, const json& patch,
                                                   WriteOrigin origin) {
  std::vector<Change> changes;
  std::variant<json, WriteError> result;
  {
    std::lock_guard lock(mu_);
    result = update_locked(object, id, patch, origin, changes);
  }
  notify(changes);
  return result;
}

std::variant<std::vector<json>, WriteError> TwentyStore::create_many(Object object, const json& records, bool upsert,
                                                                     WriteOrigin origin) {
  if (!records.is_array()) return WriteError{400, "a batch must be a JSON array"};
  if (records.size() > 60) {
    return WriteError{400, "a batch holds at most 60 records, this one has " + std::to_string(records.size())};
  }
  std::vector<Change> changes;
  std::vector<json> out;
  {
    std::lock_guard lock(mu_);
    // All or nothing: work on copies and put them back only when every record succeeded.
    Table saved = table(object);
    auto saved_writes = api_writes_;
    int saved_creates = api_creates_;
    for (const auto& r : records) {
      std::variant<json, WriteError> one;
      if (upsert && r.is_object() && r.contains("id") && r["id"].is_string() &&
          table(object).records.count(r["id"].get<std::string>())) {
        json patch = r;
        patch.erase("id");
        one = update_locked(object, r["id"].get<std::string>(), patch, origin, changes);
      } else {
        one = create_locked(object, r, origin, changes);
      }
      if (auto* error = std::get_if<WriteError>(&one)) {
        table(object) = std::move(saved);
        api_writes_ = std::move(saved_writes);
        api_creates_ = saved_creates;
        return *error;
      }
      out.push_back(std::get<json>(one));
    }
  }
  notify(changes);
  return out;
}

std::variant<json, WriteError> TwentyStore::soft_delete(Object object, const std::string& id, WriteOrigin origin) {
  std::vector<Change> changes;
  json result;
  {
    std::lock_guard lock(mu_);
    Table& t = table(object);
    auto it = t.records.find(id);
    if (it == t.records.end() || it->second.deleted_ms) {
      return WriteError{404, "Record " + id + " of object " + singular_name(object) + " not found"};
    }
    // TypeORM's soft delete stamps updatedAt too: the delete is the record's newest version.
    int64_t now = tick_locked();
    it->second.deleted_ms = now;
    it->second.data["deletedAt"] = format_iso_ms(now);
    set_updated(t, it->second, now);
    count_write(id, origin);
    result = it->second.data;
    changes.push_back({object, ChangeKind::kDeleted, result, {}});
  }
  notify(changes);
  return result;
}

std::variant<json, WriteError> TwentyStore::restore(Object object, const std::string& id, WriteOrigin origin) {
  std::vector<Change> changes;
  json result;
  {
    std::lock_guard lock(mu_);
    Table& t = table(object);
    auto it = t.records.find(id);
    if (it == t.records.end() || !it->second.deleted_ms) {
      return WriteError{404, "Deleted record " + id + " of object " + singular_name(object) + " not found"};
    }
    it->second.deleted_ms.reset();
    it->second.data["deletedAt"] = nullptr;
    set_updated(t, it->second, tick_locked());
    count_write(id, origin);
    result = it->second.data;
    changes.push_back({object, ChangeKind::kRestored, result, {}});
  }
  notify(changes);
  return result;
}

bool TwentyStore::destroy(Object object, const std::string& id) {
  std::vector<Change> changes;
  {
    std::lock_guard lock(mu_);
    Table& t = table(object);
    auto it = t.records.find(id);
    if (it == t.records.end()) return false;
    changes.push_back({object, ChangeKind::kDestroyed, it->second.data, {}});
    t.order.erase({it->second.updated_ms, id});
    t.records.erase(it);
  }
  notify(changes);
  return true;
}

std::optional<json> TwentyStore::get(Object object, const std::string& id) const {
  std::lock_guard lock(mu_);
  const Table& t = table(object);
  auto it = t.records.find(id);
  if (it == t.records.end()) return std::nullopt;
  return it->second.data;
}

std::size_t TwentyStore::size(Object object, bool with_deleted) const {
  std::lock_guard lock(mu_);
  std::size_t n = 0;
  for (const auto& [id, s] : table(object).records) n += (with_deleted || !s.deleted_ms) ? 1 : 0;
  return n;
}

std::vector<std::string> TwentyStore::ids(Object object) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  const Table& t = table(object);
  for (const auto& [ms, id] : t.order) {
    if (!t.records.at(id).deleted_ms) out.push_back(id);
  }
  return out;
}

int TwentyStore::api_writes(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = api_writes_.find(id);
  return it == api_writes_.end() ? 0 : it->second;
}

int TwentyStore::total_api_writes() const {
  std::lock_guard lock(mu_);
  int n = 0;
  for (const auto& [id, count] : api_writes_) n += count;
  return n;
}

int TwentyStore::api_creates() const {
  std::lock_guard lock(mu_);
  return api_creates_;
}

std::map<std::string, int> TwentyStore::api_writes_by_id() const {
  std::lock_guard lock(mu_);
  return api_writes_;
}

std::vector<std::string> TwentyStore::seed_people(int count, WriteOrigin origin) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string n = std::to_string(i);
    json person = {{"name", {{"firstName", "First" + n}, {"lastName", "Last" + n}}},
                   {"emails", {{"primaryEmail", "person" + n + "@example.com"}}},
                   {"phones", {{"primaryPhoneNumber", "555" + n}, {"primaryPhoneCountryCode", "US"}}},
                   {"jobTitle", i % 3 == 0 ? "CTO" : "Engineer"},
                   {"city", i % 2 == 0 ? "Lisbon" : "Paris"}};
    out.push_back(std::get<json>(create(Object::kPeople, person, origin))["id"].get<std::string>());
  }
  return out;
}

std::vector<std::string> TwentyStore::seed_companies(int count, WriteOrigin origin) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) {
    std::string n = std::to_string(i);
    json company = {{"name", "Company " + n},
                    {"domainName", {{"primaryLinkUrl", "https://company" + n + ".example.com"}}},
                    {"employees", 10 + i},
                    {"address", {{"addressCity", i % 2 == 0 ? "Lisbon" : "Paris"}}}};
    out.push_back(std::get<json>(create(Object::kCompanies, company, origin))["id"].get<std::string>());
  }
  return out;
}

}  // namespace leadsync::fakes::twenty
