#include "workers/targets/identity.h"

#include <algorithm>

#include "common/pg.h"

namespace leadsync::workers {

IdentityResolver::IdentityResolver(const common::Config& config, const common::EntityConfig& entity)
    : entity_(entity) {
  const auto& reverse = config.reverse;
  if (reverse.enabled && reverse.entity == entity.name && !reverse.id_field.empty() && !reverse.crm_sources.empty()) {
    id_field_ = reverse.id_field;
    crm_sources_ = reverse.crm_sources;
  }
  if (!enabled()) return;
  const auto q = [](const std::string& name) { return common::quote_ident(name); };
  const auto table = q(config.postgres.schema) + "." + q(entity.table);
  const auto key = q(entity.key);
  // $1 keys, $2 the keys that are CRM ids (NULL for other sources' events), $3.. one array per
  // match_on field, last: the entity name.
  std::string cols = "k, c", args = "$1::text[], $2::text[]";
  for (std::size_t i = 0; i < entity.match_on.size(); ++i) {
    cols += ", m" + std::to_string(i);
    args += ", $" + std::to_string(i + 3) + "::text[]";
  }
  const auto entity_param = "$" + std::to_string(entity.match_on.size() + 3);
  const std::string live = std::string(" AND NOT t._deleted") + (entity.partial_events ? " AND NOT t._incomplete" : "");
  std::vector<std::string> candidates;
  if (!id_field_.empty()) {
    // Before any match_on field: the CRM's own id of the record is the surest link.
    candidates.push_back("SELECT t." + key + " AS key, -1 AS prio, " + common::quote_literal(id_field_) +
                         " AS field, s.c AS value FROM " + table + " t WHERE s.c IS NOT NULL AND t." + q(id_field_) +
                         " = s.c AND t." + key + " <> s.k" + live);
  }
  for (std::size_t i = 0; i < entity.match_on.size(); ++i) {
    const auto m = "s.m" + std::to_string(i);
    candidates.push_back("SELECT t." + key + " AS key, " + std::to_string(i) + " AS prio, " +
                         common::quote_literal(entity.match_on[i]) + " AS field, " + m + " AS value FROM " + table +
                         " t WHERE " + m + " IS NOT NULL AND t." + q(entity.match_on[i]) + " = " + m + " AND t." + key +
                         " <> s.k" + live);
  }
  std::string union_all;
  for (const auto& c : candidates) union_all += (union_all.empty() ? "" : " UNION ALL ") + c;
  sql_ = "SELECT s.i, coalesce(link.key, m.key), CASE WHEN link.key IS NULL THEN m.field ELSE '' END, "
         "CASE WHEN link.key IS NULL THEN m.value ELSE '' END "
         "FROM unnest(" + args + ") WITH ORDINALITY AS s(" + cols + ", i) "
         "LEFT JOIN leadsync.identities link ON link.entity = " + entity_param +
         " AND link.field = '_key' AND link.value = s.k "
         "LEFT JOIN LATERAL (SELECT x.key, x.field, x.value FROM (" + union_all +
         ") x ORDER BY x.prio, x.key LIMIT 1) m ON link.key IS NULL AND NOT EXISTS "
         "(SELECT 1 FROM " + table + " t WHERE t." + key + " = s.k) "
         "WHERE coalesce(link.key, m.key) IS NOT NULL";
}

std::vector<IdentityLink> IdentityResolver::resolve(pqxx::transaction_base& tx,
                                                    const std::vector<const common::ChangeEvent*>& events) const {
  std::vector<IdentityLink> links;
  if (!enabled() || events.empty()) return links;
  common::TextArrayLiteral keys, crm_ids;
  std::vector<common::TextArrayLiteral> matches(entity_.match_on.size());
  for (const auto* e : events) {
    keys.add(std::string_view(e->key()));
    if (std::find(crm_sources_.begin(), crm_sources_.end(), e->source()) != crm_sources_.end()) {
      crm_ids.add(std::string_view(e->key()));
    } else {
      crm_ids.add_null();
    }
    for (std::size_t i = 0; i < entity_.match_on.size(); ++i) {
      const auto it = e->fields().find(entity_.match_on[i]);
      const bool usable = e->op() == leadsync::v1::OP_UPSERT && it != e->fields().end() &&
                          it->second.kind_case() == common::Value::kStringValue && !it->second.string_value().empty();
      if (usable) {
        matches[i].add(std::string_view(it->second.string_value()));
      } else {
        matches[i].add_null();
      }
    }
  }
  std::vector<std::string> params{keys.str(), crm_ids.str()};
  for (const auto& m : matches) params.push_back(m.str());
  params.push_back(entity_.name);
  const auto rows = tx.exec_params(sql_, pqxx::prepare::make_dynamic_params(params));
  for (const auto& r : rows) {
    const auto index = r[0].as<std::size_t>() - 1;
    IdentityLink link{index, events.at(index)->key(), r[1].as<std::string>(), r[2].as<std::string>(),
                      r[3].as<std::string>()};
    if (!link.field.empty()) {
      // A new link: remember it, so that later events with this key follow it even when the
      // alternate key changes, and so that verify and explain can show it.
      tx.exec_params(
          "INSERT INTO leadsync.identities (entity, field, value, key) VALUES ($1, '_key', $2, $3), ($1, $4, $5, $3) "
          "ON CONFLICT (entity, field, value) DO UPDATE SET key = EXCLUDED.key, linked_at = now()",
          entity_.name, link.from_key, link.to_key, link.field, link.value);
    }
    links.push_back(std::move(link));
  }
  return links;
}

}  // namespace leadsync::workers
