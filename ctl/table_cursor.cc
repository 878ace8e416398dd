#include "ctl/table_cursor.h"

#include "common/pg.h"

namespace leadsync::ctl {

std::unordered_map<std::string, std::string> identity_links(pqxx::transaction_base& tx, const std::string& entity) {
  std::unordered_map<std::string, std::string> links;
  for (const auto& l : tx.exec_params("SELECT value, key FROM leadsync.identities WHERE entity = $1 AND field = '_key'",
                                      entity)) {
    links.emplace(l[0].as<std::string>(), l[1].as<std::string>());
  }
  return links;
}

TableCursor::TableCursor(pqxx::connection& conn, const common::Config& config, const common::EntityConfig& entity,
                         const std::string& source, const std::vector<const common::FieldConfig*>& fields,
                         const std::set<std::string>& keys)
    : tx_(conn), fields_(fields) {
  tx_.exec("SET LOCAL TimeZone = 'UTC'");
  tx_.exec("SET LOCAL DateStyle = 'ISO'");
  const auto key = conn.quote_name(entity.key);
  std::string cols = key;
  for (const auto* f : fields_) cols += ", " + conn.quote_name(f->name) + "::text";
  std::string where = entity.partial_events ? " WHERE NOT _incomplete" : " WHERE true";
  if (!keys.empty()) {
    std::string list;
    for (const auto& k : keys) list += (list.empty() ? "" : ", ") + tx_.quote(k);
    where += " AND " + key + " IN (" + list + ")";
  }
  tx_.exec_params("DECLARE table_cursor NO SCROLL CURSOR FOR SELECT " + cols +
                      ", _deleted, _source IS NOT DISTINCT FROM $1, _version FROM " +
                      common::qualified(conn, config.postgres.schema, entity.table) + where + " ORDER BY " + key +
                      " COLLATE \"C\"",
                  source);
}

bool TableCursor::next(TableRow& out) {
  if (at_ >= batch_.size()) {
    if (done_) return false;
    batch_ = tx_.exec("FETCH 10000 FROM table_cursor");
    at_ = 0;
    if (batch_.empty()) {
      done_ = true;
      return false;
    }
  }
  const auto r = batch_[at_++];
  out.key = r[0].c_str();
  out.values.clear();
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    const auto& field = r[static_cast<int>(i) + 1];
    if (field.is_null()) {
      common::Value null;
      null.set_null_value(true);
      out.values.emplace_back(std::move(null));
    } else {
      out.values.push_back(common::value_from_sql_text(*fields_[i], field.c_str()));
    }
  }
  const int n = static_cast<int>(fields_.size());
  out.deleted = r[n + 1].as<bool>();
  out.from_source = r[n + 2].as<bool>();
  out.version = r[n + 3].as<int64_t>();
  return true;
}

}  // namespace leadsync::ctl
