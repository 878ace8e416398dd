// The table side of verify, repair and plan: an entity's rows in key order (COLLATE "C", the byte
// order of ctl/sorted_source.h) through a server-side cursor, a batch at a time, so that memory
// does not grow with the table.
#pragma once

#include <pqxx/pqxx>

#include <cstdint>
#include <optional>
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

}  // namespace leadsync::ctl
