// The identity of the target a source's state describes (issue 7 item 16): the entity, its table
// and that table's identity in the database (its OID and the database's), and whether it holds any
// row. Source state built against one target says nothing about another: a new, recreated or
// restored table (another OID), or a truncated one (no rows while the state has keys), gets every
// record published again.
#pragma once

#include <pqxx/pqxx>

#include <string>

#include "common/config.h"

namespace leadsync::producers {

struct TargetStamp {
  std::string stamp;     // "entity@schema.table#database-oid.table-oid" (table-oid "absent" before it exists)
  bool has_rows = false;
};

TargetStamp read_target_stamp(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity);

}  // namespace leadsync::producers
