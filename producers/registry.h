// Builds the adapter of a configured source from its kind (common/source_config.h lists the kinds
// and parses their sections; registry.cc holds one factory per kind, matched by the compiler).
#pragma once

#include <memory>
#include <string>

#include "common/source_config.h"
#include "producers/source.h"

namespace leadsync::producers {

// `work_dir` is where an adapter may create its private scratch directory (a download). Throws
// common::ConfigError for a kind without an adapter in this build.
std::unique_ptr<SourceAdapter> make_adapter(const common::SourceConfig& source, const std::string& work_dir);

}  // namespace leadsync::producers
