// Checks a decoded event against its entity before anything is applied. A violation is permanent:
// the event goes to the dead-letter topic with the reason, naming the field.
#pragma once

#include <string>

#include "common/config.h"
#include "common/mapping.h"

namespace leadsync::workers {

// Returns an empty string when the event fits; otherwise what is wrong, naming the field.
std::string validate_event(const common::Config& config, const common::ChangeEvent& event);
// The same for an event whose entity is known to be `entity`.
std::string validate_event(const common::EntityConfig& entity, const common::ChangeEvent& event);

}  // namespace leadsync::workers
