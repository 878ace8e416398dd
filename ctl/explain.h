// leadsyncctl explain ENTITY KEY (design.md §8, R8): one record across every place leadsync keeps
// something about it — each source's current image (mapped as the producer maps it, or why it is
// rejected), the PostgreSQL row with its version, origin and source, the checksum and run the
// source's stored state has for it, identity links, the audit's recent field changes and the dead
// letters for it with their reason.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "common/config.h"

namespace leadsync::ctl {

nlohmann::json explain_record(const common::Config& config, const std::string& entity, const std::string& key);
std::string format_explain(const nlohmann::json& e);

}  // namespace leadsync::ctl
