#include "producers/firestore/firestore_source.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "producers/firestore/firestore_value.h"

namespace leadsync::producers {
namespace {

using nlohmann::json;

int64_t now_micros() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "2026-01-02 03:04:05.123456+00" → "2026-01-02T03:04:05.123456Z", as Firestore's JSON wants it.
std::string rfc3339(int64_t micros) {
  auto text = common::format_timestamp_micros(micros);
  text[10] = 'T';
  return text.substr(0, text.size() - 3) + "Z";
}

json order_by(const std::string& field) {
  return {{"field", {{"fieldPath", field}}}, {"direction", "ASCENDING"}};
}

}  // namespace

FirestoreSource::FirestoreSource(const common::SourceConfig& config, const common::FirestoreSettings& settings)
    : config_(config), settings_(settings) {
  for (const auto& [column, field] : config_.columns) columns_.push_back(column);
}

FirestoreSource::~FirestoreSource() = default;

void FirestoreSource::start(Mode mode) {
  // Built here rather than in the constructor: a missing emulator or credentials fail the run, not
  // the construction of an adapter that verify or a config check may never read.
  if (!client_) client_ = std::make_unique<firestore::FirestoreClient>(config_, settings_);
  mode_ = mode;
  page_.clear();
  exhausted_ = false;
  read_time_.clear();
  returned_ = 0;
  total_ = mode == Mode::kFull ? client_->count() : std::nullopt;
}

std::string FirestoreSource::open() {
  after_name_.clear();
  after_value_ = nullptr;
  high_water_ = 0;
  full_at_ = now_micros();
  start(Mode::kFull);
  return "";  // no cheap fingerprint of a collection: every full read is diffed record by record
}

json FirestoreSource::page_query() const {
  auto q = client_->base_query();
  if (mode_ == Mode::kFull) {
    q["orderBy"] = json::array({order_by(kDocumentId)});
    if (!after_name_.empty()) {
      q["startAt"] = {{"values", json::array({{{"referenceValue", after_name_}}})}, {"before", false}};
    }
  } else {
    q["orderBy"] = json::array({order_by(settings_.updated_field), order_by(kDocumentId)});
    if (!after_name_.empty()) {
      q["startAt"] = {{"values", json::array({after_value_, {{"referenceValue", after_name_}}})}, {"before", false}};
    } else {
      q["startAt"] = {{"values", json::array({since_})}, {"before", true}};
    }
  }
  q["limit"] = settings_.page_size;
  return q;
}

void FirestoreSource::fetch_page() {
  auto page = client_->run_query(page_query(), read_time_);
  // Every later page reads the snapshot of the first: documents written meanwhile neither appear
  // twice nor make others vanish (the next run sees them).
  if (read_time_.empty()) read_time_ = page.read_time;
  exhausted_ = page.documents.size() < static_cast<std::size_t>(settings_.page_size);
  for (auto& d : page.documents) page_.push_back(std::move(d));
}

bool FirestoreSource::next(SourceRecord& out, std::optional<std::string>& error) {
  if (mode_ == Mode::kClosed) throw std::logic_error("FirestoreSource::next before open/changes_since/resume");
  while (page_.empty()) {
    if (exhausted_) return false;
    fetch_page();
  }
  const auto document = std::move(page_.front());
  page_.pop_front();
  const auto name = document.value("name", std::string());
  if (name.empty()) throw std::runtime_error("source " + config_.name + ": runQuery returned a document without a name");
  after_name_ = name;
  if (!settings_.updated_field.empty()) {
    const auto fields = document.find("fields");
    const auto* updated = fields == document.end() ? nullptr : firestore::find_field(*fields, settings_.updated_field);
    if (mode_ == Mode::kChanges) after_value_ = updated ? *updated : json(nullptr);
    if (updated && updated->contains("timestampValue") && (*updated)["timestampValue"].is_string()) {
      if (const auto t = firestore::timestamp_micros((*updated)["timestampValue"].get<std::string>())) {
        high_water_ = std::max(high_water_, *t);
      }
    }
  }
  fill(document, out, error);
  return true;
}

void FirestoreSource::fill(const json& document, SourceRecord& out, std::optional<std::string>& error) {
  const auto name = document["name"].get<std::string>();
  const auto id = firestore::last_segment(name);
  out.position = ++returned_;
  out.kind = CellKind::kTyped;
  out.op = RecordOp::kUpsert;
  out.cells.clear();
  out.key = config_.key_column == kDocumentId ? id : std::string();
  out.values.assign(columns_.size(), common::Value());
  out.source_version.reset();
  error.reset();
  if (const auto t = firestore::timestamp_micros(document.value("updateTime", std::string()))) out.source_version = *t;
  static const json kNoFields = json::object();
  const auto fields = document.find("fields");
  const auto& all = fields == document.end() ? kNoFields : *fields;
  std::string message;
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i] == kDocumentId) {
      out.values[i].set_string_value(id);
      continue;
    }
    const auto* typed = firestore::find_field(all, columns_[i]);
    if (!typed) continue;  // absent: the mapper applies the field's rule for a missing value
    auto v = firestore::decode_value(*typed, columns_[i], message);
    if (!v) {
      error = "document " + firestore::document_path(name) + ": " + message;
      out.cells = {id};  // the document exists: an unreadable one must not read as deleted
      return;
    }
    // A key held in a field may be a number; keys are text.
    if (columns_[i] == config_.key_column && v->kind_case() == common::Value::kIntValue) {
      v->set_string_value(std::to_string(v->int_value()));
    }
    out.values[i] = std::move(*v);
  }
}

double FirestoreSource::progress() const {
  if (mode_ == Mode::kChanges) return exhausted_ && page_.empty() ? 1.0 : 0.0;
  if (!total_ || *total_ == 0) return 0;
  return std::min(1.0, static_cast<double>(returned_) / static_cast<double>(*total_));
}

std::optional<Checkpoint> FirestoreSource::checkpoint() const {
  if (mode_ == Mode::kClosed) return std::nullopt;
  json c{{"read", mode_ == Mode::kFull ? "full" : "changes"},
         {"after", after_name_},
         {"high_water", high_water_},
         {"full_at", full_at_}};
  if (mode_ == Mode::kChanges) {
    c["after_value"] = after_value_;
    c["since"] = since_;
  }
  return Checkpoint{c.dump()};
}

bool FirestoreSource::changes_since(const Checkpoint& cursor) {
  if (settings_.updated_field.empty()) return false;  // no field to query by: full reads only
  const auto c = json::parse(cursor.value, nullptr, false);
  if (!c.is_object()) return false;
  full_at_ = c.value("full_at", int64_t{0});
  // Deletions only show in a full read: decline when one is due, and the run reads everything.
  const auto full_every = std::chrono::duration_cast<std::chrono::microseconds>(settings_.full_scan_every).count();
  if (full_at_ <= 0 || now_micros() - full_at_ >= full_every) return false;
  high_water_ = c.value("high_water", int64_t{0});
  const auto overlap = std::chrono::duration_cast<std::chrono::microseconds>(settings_.overlap).count();
  // Writers' clocks differ: re-read `overlap` before the newest value seen (unchanged documents
  // cost a checksum comparison, a skipped one would be lost until the next full read).
  since_ = {{"timestampValue", rfc3339(high_water_ > 0 ? high_water_ - overlap : 0)}};
  after_name_.clear();
  after_value_ = nullptr;
  start(Mode::kChanges);
  return true;
}

bool FirestoreSource::resume(const Checkpoint& from) {
  const auto c = json::parse(from.value, nullptr, false);
  if (!c.is_object() || !c.contains("read") || !c["read"].is_string()) return false;
  const auto read = c["read"].get<std::string>();
  if (read != "full" && !(read == "changes" && !settings_.updated_field.empty())) return false;
  after_name_ = c.value("after", std::string());
  high_water_ = c.value("high_water", int64_t{0});
  full_at_ = c.value("full_at", int64_t{0});
  after_value_ = c.contains("after_value") ? c["after_value"] : json(nullptr);
  since_ = c.contains("since") ? c["since"] : json(nullptr);
  // A new snapshot: the interrupted read's readTime may be older than Firestore keeps.
  start(read == "full" ? Mode::kFull : Mode::kChanges);
  return true;
}

}  // namespace leadsync::producers
