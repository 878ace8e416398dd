#include "producers/twenty/twenty_source.h"

#include <cstdlib>
#include <stdexcept>

#include "common/errors.h"
#include "producers/twenty/twenty_record.h"

namespace leadsync::producers {
namespace {

std::string url_encode(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(hex[c >> 4]);
      out.push_back(hex[c & 0xF]);
    }
  }
  return out;
}

const char* phase_name(int phase) { return phase == 0 ? "live" : phase == 1 ? "deleted" : "done"; }

// ISO timestamps of one format compare as text; the larger of two, empty counting as smallest.
std::string later(const std::string& a, const std::string& b) {
  const auto ma = a.empty() ? std::nullopt : common::parse_timestamp_micros(a);
  const auto mb = b.empty() ? std::nullopt : common::parse_timestamp_micros(b);
  if (!ma) return b;
  if (!mb) return a;
  return *mb > *ma ? b : a;
}

}  // namespace

TwentySource::TwentySource(const common::SourceConfig& source, const common::TwentySettings& settings,
                           common::HttpSleep sleep)
    : source_(source), settings_(settings), base_(source.url), http_(source.http, std::move(sleep)) {
  if (!base_.ends_with("/")) base_ += "/";
  const char* key = std::getenv(settings.api_key_env.c_str());
  if (!key || !*key) {
    throw common::ConfigError("source " + source.name + ": the environment variable " + settings.api_key_env +
                              " (twenty.api_key_env) holding the Twenty API key is not set");
  }
  api_key_ = key;
  for (const auto& [column, field] : source.columns) columns_.push_back(column);
}

void TwentySource::start(State state) {
  state_ = std::move(state);
  page_ = nlohmann::json::array();
  page_index_ = 0;
  page_loaded_ = false;
  page_has_next_ = false;
  phase_total_ = phase_read_ = 0;
}

std::string TwentySource::open() {
  State s;
  s.phase = Phase::kLive;
  start(std::move(s));
  return "";  // no cheap fingerprint of a whole CRM
}

bool TwentySource::changes_since(const Checkpoint& cursor) {
  State s;
  s.phase = Phase::kLive;
  s.incremental = true;
  if (!cursor.value.empty()) {
    const auto j = nlohmann::json::parse(cursor.value, nullptr, false);
    if (!j.is_object()) throw std::runtime_error("source " + source_.name + ": unreadable stored cursor");
    s.since_updated = j.value("max_updated", "");
    // Deletes since the last read; a cursor from a full read starts them at its last update.
    s.since_deleted = later(j.value("max_deleted", ""), s.since_updated);
    s.max_updated = s.since_updated;
    s.max_deleted = s.since_deleted;
  }
  start(std::move(s));
  return true;
}

std::optional<Checkpoint> TwentySource::checkpoint() const {
  nlohmann::json j = {{"phase", phase_name(static_cast<int>(state_.phase))},
                      {"incremental", state_.incremental},
                      {"since_updated", state_.since_updated},
                      {"since_deleted", state_.since_deleted},
                      {"after", state_.after},
                      {"max_updated", state_.max_updated},
                      {"max_deleted", state_.max_deleted}};
  return Checkpoint{j.dump()};
}

bool TwentySource::resume(const Checkpoint& from) {
  const auto j = nlohmann::json::parse(from.value, nullptr, false);
  if (!j.is_object() || !j.contains("phase")) return false;
  State s;
  const auto phase = j.value("phase", "");
  s.phase = phase == "live" ? Phase::kLive : phase == "deleted" ? Phase::kDeleted : Phase::kDone;
  s.incremental = j.value("incremental", false);
  s.since_updated = j.value("since_updated", "");
  s.since_deleted = j.value("since_deleted", "");
  s.after = j.value("after", "");
  s.max_updated = j.value("max_updated", "");
  s.max_deleted = j.value("max_deleted", "");
  start(std::move(s));
  return true;
}

std::string TwentySource::page_url() const {
  std::string filter;
  if (state_.phase == Phase::kLive && !state_.since_updated.empty()) {
    filter = "updatedAt[gte]:\"" + state_.since_updated + "\"";
  } else if (state_.phase == Phase::kDeleted) {
    filter = "deletedAt[gte]:\"" + state_.since_deleted + "\"";
  }
  std::string url = base_ + common::twenty_object_name(settings_.object) +
                    "?order_by=" + url_encode("updatedAt[AscNullsFirst],id") +
                    "&limit=" + std::to_string(settings_.page_size);
  if (!filter.empty()) url += "&filter=" + url_encode(filter);
  if (!state_.after.empty()) url += "&starting_after=" + url_encode(state_.after);
  return url;
}

bool TwentySource::fetch_page() {
  common::HttpRequest req;
  req.url = page_url();
  req.headers = {{"Authorization", "Bearer " + api_key_}, {"Accept", "application/json"}};
  common::HttpResponse res;
  try {
    res = http_.fetch(req);
  } catch (const common::HttpError& e) {
    const std::string hint = e.status() == 401 || e.status() == 403
                                 ? " (check the API key in " + settings_.api_key_env + ")"
                                 : "";
    throw std::runtime_error("source " + source_.name + ": reading Twenty's " +
                             common::twenty_object_name(settings_.object) + " failed: " + e.what() + hint);
  }
  const auto body = nlohmann::json::parse(res.body, nullptr, false);
  const auto object = common::twenty_object_name(settings_.object);
  const auto where = "source " + source_.name + ": Twenty's " + object + " page";
  if (!body.is_object() || !body.contains("data") || !body["data"].is_object() || !body["data"].contains(object) ||
      !body["data"][object].is_array()) {
    throw std::runtime_error(where + " has no data." + object + " array");
  }
  const auto info = body.value("pageInfo", nlohmann::json::object());
  page_ = body["data"][object];
  page_index_ = 0;
  page_has_next_ = info.value("hasNextPage", false);
  page_end_cursor_ = info.contains("endCursor") && info["endCursor"].is_string() ? info["endCursor"].get<std::string>() : "";
  if (!page_loaded_ && body.contains("totalCount") && body["totalCount"].is_number()) {
    phase_total_ = body["totalCount"].get<std::size_t>();
  }
  page_loaded_ = true;
  if (page_has_next_ && (page_end_cursor_.empty() || page_.empty())) {
    // Going on would read the same page forever; stopping would mistake the rest for absent.
    throw std::runtime_error(where + " says more pages follow but gives no endCursor");
  }
  return !page_.empty();
}

void TwentySource::check_paths(const nlohmann::json& record) const {
  std::string missing;
  for (const auto& c : columns_) {
    if (!twenty::has_path(record, c)) missing += (missing.empty() ? "'" : ", '") + c + "'";
  }
  if (!missing.empty()) {
    throw std::runtime_error("source " + source_.name + ": mapped column(s) " + missing + " are not fields of Twenty's " +
                             common::twenty_object_name(settings_.object) +
                             " (a composite field's part is written name.firstName); nothing was synced");
  }
}

bool TwentySource::next(SourceRecord& out, std::optional<std::string>& error) {
  error.reset();
  for (;;) {
    if (state_.phase == Phase::kDone) return false;
    if (!page_loaded_ || page_index_ >= page_.size()) {
      if (page_loaded_) {
        // Every record of the page was returned: the checkpoint moves past it.
        if (!page_has_next_) {
          const bool deleted_next = state_.phase == Phase::kLive && state_.incremental && !state_.since_deleted.empty();
          state_.phase = deleted_next ? Phase::kDeleted : Phase::kDone;
          state_.after.clear();
          page_loaded_ = false;
          phase_total_ = phase_read_ = 0;
          continue;
        }
        state_.after = page_end_cursor_;
      }
      if (!fetch_page()) {
        page_has_next_ = false;
        continue;
      }
    }
    const auto& record = page_[page_index_++];
    ++phase_read_;
    const auto problem = twenty::to_source_record(record, columns_, source_.key_column, ++position_, out);
    if (!problem.empty()) {
      error = problem;
      return true;
    }
    // Only the live phase moves the live mark: a delete read after it may be newer than an update
    // made meanwhile, which the next read must still see.
    if (state_.phase == Phase::kLive && record["updatedAt"].is_string()) {
      state_.max_updated = later(state_.max_updated, record["updatedAt"].get<std::string>());
    }
    if (out.op == RecordOp::kDelete) {
      state_.max_deleted = later(state_.max_deleted, record["deletedAt"].get<std::string>());
    } else if (!paths_checked_) {
      check_paths(record);
      paths_checked_ = true;
    }
    return true;
  }
}

double TwentySource::progress() const {
  if (state_.phase == Phase::kDone) return 1.0;
  if (phase_total_ == 0) return 0.0;
  const double live = std::min(1.0, static_cast<double>(phase_read_) / static_cast<double>(phase_total_));
  return state_.incremental && !state_.since_deleted.empty() ? (state_.phase == Phase::kLive ? live * 0.9 : 0.9 + live * 0.1)
                                                             : live;
}

}  // namespace leadsync::producers
