// Alternate keys (R1): a record is found even when its ids disagree between systems (a Firebase
// UID in Firestore that differs from the key stored in PostgreSQL). An event whose key is not in
// the table but whose alternate key (an entity's match_on field, e.g. a normalised e-mail) matches
// a live record is applied to that record instead of creating a duplicate; the link is stored in
// leadsync.identities and reported. Later events with the foreign key follow the stored link.
//
// The reverse direction's entity has one more alternate key (issue 9): the CRM id that the sink
// wrote back into reverse.id_field of a record created in PostgreSQL. An event of a CRM source
// (reverse.crm_sources, keyed by CRM ids) whose key is unknown but equals a row's id_field is that
// row's record, linked like a match_on match. The sink also stores the link itself before it
// creates the record in the CRM, so that a webhook or poll of the new record that arrives before
// the id is written back follows the link too.
#pragma once

#include <pqxx/pqxx>

#include <string>
#include <vector>

#include "common/config.h"
#include "common/mapping.h"

namespace leadsync::workers {

struct IdentityLink {
  std::size_t index = 0;  // the event, in the list given to resolve()
  std::string from_key;  // the key the event carried
  std::string to_key;    // the record it was applied to
  std::string field;     // the alternate key that matched ("" when an earlier link was followed)
  std::string value;
};

class IdentityResolver {
 public:
  IdentityResolver(const common::Config& config, const common::EntityConfig& entity);

  bool enabled() const { return !entity_.match_on.empty() || !id_field_.empty(); }
  // Finds the events of `events` (all of this entity) that belong to another record, stores new
  // links in `tx`, and returns one link per such event. The events are not touched: the caller
  // applies copies with the new keys, so that a batch retried after `tx` rolled back resolves (and
  // links) again (R1).
  std::vector<IdentityLink> resolve(pqxx::transaction_base& tx,
                                    const std::vector<const common::ChangeEvent*>& events) const;

 private:
  const common::EntityConfig& entity_;
  std::string id_field_;                 // reverse.id_field when this is the reverse entity
  std::vector<std::string> crm_sources_;  // whose keys are CRM ids
  std::string sql_;
};

}  // namespace leadsync::workers
