// PostgreSQL access: connections with bounded connect time, identifier quoting and the mapping of
// database errors onto leadsync's error classes (libpqxx's except.hxx mirrors SQLSTATE classes).
#pragma once

#include <pqxx/pqxx>

#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <string_view>
#include <string>

#include "common/config.h"
#include "common/errors.h"

namespace leadsync::common {

// The connection string pg_connect uses: `url` with connect_timeout (5 s) and application_name
// added unless it sets them itself (for a raw libpq connection, e.g. a binary COPY).
std::string pg_conninfo(const std::string& url, const std::string& application_name);
// Opens a connection; adds connect_timeout=5 unless the URL sets one, and an application_name.
std::unique_ptr<pqxx::connection> pg_connect(const std::string& url, const std::string& application_name);
// The same, with the session limits of `postgres:` (statement, lock and idle-in-transaction
// timeouts) set on the connection: for the processes that apply and record changes.
std::unique_ptr<pqxx::connection> pg_connect(const PostgresConfig& pg, const std::string& application_name);

// An identifier or a string literal quoted for SQL text, without a connection (the statements are
// built once and checked by unit tests): "a""b" and 'it''s'. leadsync's connections run with
// standard_conforming_strings on (the default since PostgreSQL 9.1), so a backslash is literal.
std::string quote_ident(std::string_view name);
std::string quote_literal(std::string_view text);

// "schema"."name", each part quoted.
std::string qualified(const pqxx::connection_base& c, const std::string& schema, const std::string& name);

// Infrastructure: the connection broke, the server is going away / out of resources, or the
// schema does not fit the statement (SQLSTATE classes 42, 3F: a deployment problem, not a record's).
// Retryable: serialization failure, deadlock, lock timeout, statement timeout, a foreign key whose
// parent is not there yet (23503), and any error raised with SQLSTATE class 40 or 55. Everything
// else (data, constraint, syntax): permanent.
ErrorClass classify_pg_error(const std::exception& e);
std::string pg_sqlstate(const std::exception& e);  // empty when not an SQL error

// Builds a text[] array literal, one element at a time, for a bound parameter (never spliced into
// SQL): {"a","b \"c\"",NULL}. Batches travel as one array per column and are unnested in SQL.
class TextArrayLiteral {
 public:
  void reserve(std::size_t bytes) { text_.reserve(bytes); }
  void add(std::string_view element);
  void add(const std::string& element) { add(std::string_view(element)); }
  void add_null();
  void add(const std::optional<std::string>& element) { element ? add(std::string_view(*element)) : add_null(); }
  std::string str() const { return text_.empty() ? "{}" : text_ + "}"; }
  std::size_t size() const { return size_; }

 private:
  std::string text_;
  std::size_t size_ = 0;
};

// Builds a one-dimensional array in PostgreSQL's binary format (array_send's), one element at a
// time, for a parameter bound in binary: the server reads each element's length and bytes, where a
// literal (above) has it scan for quotes and escapes (array_in was 11.5 % of the backend's CPU
// applying new rows, bench/README.md, issue 12 — "the merge statement, leaner"). Elements of a
// typed array (bigint[], timestamptz[], …) are written as that type's binary receive function
// reads them, so that the server neither parses nor casts them (issue 12, "typed staging").
class BinaryArray {
 public:
  // Element types by OID (pg_type.h).
  static constexpr uint32_t kText = 25, kInt8 = 20, kFloat8 = 701, kBool = 16, kTimestamptz = 1184, kDate = 1082;

  explicit BinaryArray(uint32_t element_type = kText) : element_type_(element_type) {}
  void reserve(std::size_t bytes) { body_.reserve(bytes); }
  // A text element (of a text[]), as its bytes.
  void add(std::string_view element);
  void add(const std::string& element) { add(std::string_view(element)); }
  void add(const std::optional<std::string>& element) { element ? add(std::string_view(*element)) : add_null(); }
  void add_null();
  // Typed elements, as int8send, float8send, boolsend, timestamptz_send (microseconds since
  // 2000-01-01 UTC) and date_send (days since 2000-01-01) write them.
  void add_int8(int64_t v);
  void add_float8(double v);
  void add_bool(bool v);
  void add_timestamptz(int64_t micros_since_2000);
  void add_date(int32_t days_since_2000);
  // The array's bytes: header (dimensions, null flag, element type) and the elements.
  std::string bytes() const;
  std::size_t size() const { return size_; }
  uint32_t element_type() const { return element_type_; }

 private:
  uint32_t element_type_;
  std::string body_;
  std::size_t size_ = 0;
  bool has_null_ = false;
};

// A connection URL with any password removed, for logs.
std::string redact_url(const std::string& url);

}  // namespace leadsync::common
