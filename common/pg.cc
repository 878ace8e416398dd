#include "common/pg.h"

#include <bit>
#include <cstdint>
#include <limits>

#include "common/redact.h"

namespace leadsync::common {

std::string pg_conninfo(const std::string& url, const std::string& application_name) {
  std::string full = url;
  const bool is_uri = url.starts_with("postgresql://") || url.starts_with("postgres://");
  auto add = [&](const std::string& key, const std::string& value) {
    if (full.find(key + "=") != std::string::npos) return;
    if (is_uri) {
      full += (full.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
    } else {
      full += " " + key + "=" + value;
    }
  };
  add("connect_timeout", "5");
  add("application_name", application_name);
  return full;
}

std::unique_ptr<pqxx::connection> pg_connect(const std::string& url, const std::string& application_name) {
  auto conn = std::make_unique<pqxx::connection>(pg_conninfo(url, application_name));
  // leadsync's statements are short and frequent: JIT compilation costs seconds per batch once
  // the planner's estimate crosses jit_above_cost (a 5,000-row apply did), and never pays back.
  conn->set_variable("jit", "off");
  return conn;
}

namespace {
std::string quoted(std::string_view text, char quote) {
  std::string out(1, quote);
  for (const char c : text) {
    if (c == quote) out += quote;
    out += c;
  }
  return out + quote;
}
}  // namespace

std::string quote_ident(std::string_view name) { return quoted(name, '"'); }
std::string quote_literal(std::string_view text) { return quoted(text, '\''); }

std::unique_ptr<pqxx::connection> pg_connect(const PostgresConfig& pg, const std::string& application_name) {
  auto conn = pg_connect(pg.url, application_name);
  // A statement that waits on a row lock or runs away fails with 55P03 / 57014 (retryable) instead
  // of blocking the worker until its consumer group evicts it; a session left idle inside a
  // transaction releases its locks. 0 switches a limit off.
  conn->set_variable("statement_timeout", std::to_string(pg.statement_timeout_ms));
  conn->set_variable("lock_timeout", std::to_string(pg.lock_timeout_ms));
  conn->set_variable("idle_in_transaction_session_timeout", std::to_string(pg.idle_in_transaction_timeout_ms));
  // Prepared statements (the worker's merge, its offsets and statistics) are parsed once and
  // planned for each execution's values: a cached generic plan guesses 10 elements for every
  // unnested array parameter, and a batch holds thousands.
  conn->set_variable("plan_cache_mode", "force_custom_plan");
  return conn;
}

std::string qualified(const pqxx::connection_base& c, const std::string& schema, const std::string& name) {
  auto& conn = const_cast<pqxx::connection_base&>(c);
  return conn.quote_name(schema) + "." + conn.quote_name(name);
}

std::string pg_sqlstate(const std::exception& e) {
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) return sql->sqlstate();
  return {};
}

ErrorClass classify_pg_error(const std::exception& e) {
  if (dynamic_cast<const pqxx::broken_connection*>(&e)) return ErrorClass::kInfrastructure;
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e)) return ErrorClass::kInfrastructure;
  // In libpqxx 6, serialization_failure and deadlock_detected derive from transaction_rollback,
  // not from sql_error: they carry no SQLSTATE to look at.
  if (dynamic_cast<const pqxx::statement_completion_unknown*>(&e)) return ErrorClass::kInfrastructure;
  if (dynamic_cast<const pqxx::transaction_rollback*>(&e)) return ErrorClass::kRetryable;
  const auto state = pg_sqlstate(e);
  if (state.size() != 5) {
    // Not an SQL error from the server: libpqxx reports a lost connection in several shapes.
    return dynamic_cast<const pqxx::sql_error*>(&e) ? ErrorClass::kInfrastructure : ErrorClass::kPermanent;
  }
  const auto cls = state.substr(0, 2);
  if (cls == "08" || cls == "53" || cls == "57" || cls == "58" || state == "XX000") {
    // connection exception, insufficient resources, operator intervention (shutdown), system error
    return state == "57014" ? ErrorClass::kRetryable : ErrorClass::kInfrastructure;  // 57014: query_canceled
  }
  if (cls == "40" || cls == "55") return ErrorClass::kRetryable;  // rollback, lock not available
  // foreign_key_violation: the parent row is not there yet (it may arrive on another partition).
  if (state == "23503") return ErrorClass::kRetryable;
  // Undefined table or column, insufficient privilege, missing schema: the statement is wrong for
  // every record, not for this one. Dead-lettering the whole stream would hide a deployment
  // problem; waiting (and alerting) until it is fixed loses nothing.
  if (cls == "42" || cls == "3F") return ErrorClass::kInfrastructure;
  return ErrorClass::kPermanent;
}

void TextArrayLiteral::add(std::string_view element) {
  text_ += text_.empty() ? "{\"" : ",\"";
  // Appended in runs between the characters to escape: this runs for every value of every event.
  std::size_t from = 0;
  for (std::size_t i = 0; i < element.size(); ++i) {
    if (element[i] == '"' || element[i] == '\\') {
      text_.append(element.data() + from, i - from);
      text_ += '\\';
      from = i;
    }
  }
  text_.append(element.data() + from, element.size() - from);
  text_ += '"';
  ++size_;
}

void TextArrayLiteral::add_null() {
  text_ += text_.empty() ? "{NULL" : ",NULL";
  ++size_;
}

namespace {

void append_int32(std::string& out, uint32_t v) {
  const char b[4] = {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
                     static_cast<char>(v)};
  out.append(b, 4);
}

void append_int64(std::string& out, uint64_t v) {
  append_int32(out, static_cast<uint32_t>(v >> 32));
  append_int32(out, static_cast<uint32_t>(v));
}

}  // namespace

void BinaryArray::add(std::string_view element) {
  append_int32(body_, static_cast<uint32_t>(element.size()));
  body_.append(element.data(), element.size());
  ++size_;
}

void BinaryArray::add_null() {
  append_int32(body_, 0xFFFFFFFFu);  // length -1
  has_null_ = true;
  ++size_;
}

void BinaryArray::add_int8(int64_t v) {
  append_int32(body_, 8);
  append_int64(body_, static_cast<uint64_t>(v));
  ++size_;
}

void BinaryArray::add_float8(double v) {
  static_assert(sizeof(double) == 8 && std::numeric_limits<double>::is_iec559);
  append_int32(body_, 8);
  append_int64(body_, std::bit_cast<uint64_t>(v));
  ++size_;
}

void BinaryArray::add_bool(bool v) {
  append_int32(body_, 1);
  body_ += v ? '\1' : '\0';
  ++size_;
}

void BinaryArray::add_timestamptz(int64_t micros_since_2000) { add_int8(micros_since_2000); }

void BinaryArray::add_date(int32_t days_since_2000) {
  append_int32(body_, 4);
  append_int32(body_, static_cast<uint32_t>(days_since_2000));
  ++size_;
}

std::string BinaryArray::bytes() const {
  std::string out;
  out.reserve(20 + body_.size());
  append_int32(out, size_ == 0 ? 0 : 1);  // dimensions: none for an empty array
  append_int32(out, has_null_ ? 1 : 0);
  append_int32(out, element_type_);
  if (size_ == 0) return out;
  append_int32(out, static_cast<uint32_t>(size_));  // the dimension's length
  append_int32(out, 1);                             // and its lower bound
  out += body_;
  return out;
}

std::string redact_url(const std::string& url) { return redact(url); }

}  // namespace leadsync::common
