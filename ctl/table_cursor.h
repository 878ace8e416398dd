// The table side of verify, repair and plan: an entity's rows in key order (COLLATE "C", the byte
// order of ctl/sorted_source.h) through a server-side cursor, a batch at a time, so that memory
// does not grow with the table.
#pragma once

#include <pqxx/pqxx>

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>
#include <thread>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"

namespace leadsync::ctl {

struct TableRow {
  std::string key;
  std::vector<std::optional<common::Value>> values;  // per field asked for; nullopt: unreadable text
  bool deleted = false;
  bool from_source = false;  // _source is the source being compared
  int64_t version = 0;
};

// Keys linked to another record by an alternate key (R1): linked key -> the record's key.
std::unordered_map<std::string, std::string> identity_links(pqxx::transaction_base& tx, const std::string& entity);

class TableCursor {
 public:
  // Rows of `entity` (only `keys` when not empty), with the values of `fields`. A row that partial
  // events made before its full image arrived is not a record yet (README) and is left out.
  TableCursor(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity,
              const std::string& source, const std::vector<const common::FieldConfig*>& fields,
              const std::set<std::string>& keys = {});
  bool next(TableRow& out);
  pqxx::work& transaction() { return tx_; }

 private:
  pqxx::work tx_;
  std::vector<const common::FieldConfig*> fields_;
  pqxx::result batch_;
  pqxx::result::size_type at_ = 0;
  bool done_ = false;
};

// verify's table side: the same rows and columns as TableCursor, read with one COPY (SELECT … ORDER
// BY key COLLATE "C") TO STDOUT on a connection of its own, in a thread of its own that starts at
// construction: PostgreSQL reads and sorts while the caller maps and sorts the source, and sends
// while the caller compares. The thread hands over up to 8 chunks of 1 MiB of rows, so memory stays
// bounded; the values are PostgreSQL's text output (TimeZone UTC, DateStyle ISO), not parsed here.
struct RawField {
  bool null = false;
  std::string_view text;  // null: empty
};
struct RawRow {
  std::string_view key;
  std::vector<RawField> values;  // per field asked for
  bool deleted = false;
  bool from_source = false;
  int64_t version = 0;
};

class TableStream {
 public:
  // `conn` only quotes identifiers and keys here; the rows come over a connection of their own.
  TableStream(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity,
              const std::string& source, const std::vector<const common::FieldConfig*>& fields,
              const std::set<std::string>& keys = {});
  ~TableStream();
  TableStream(const TableStream&) = delete;
  TableStream& operator=(const TableStream&) = delete;

  // The next row in key order; its views stay valid until the next call. Throws what the reading
  // thread met (a lost connection, an error of the query).
  bool next(RawRow& out);

  struct Shared;  // between the reading thread and the caller

 private:
  std::shared_ptr<Shared> shared_;
  std::thread thread_;
  std::string source_;
  std::size_t fields_ = 0;
  std::string chunk_;
  std::size_t at_ = 0;
  std::vector<std::string> unescaped_;  // per column: the value with COPY's escapes undone
};

}  // namespace leadsync::ctl
