#include "producers/read_position.h"

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <cstdio>

#include "common/text_encoding.h"

namespace leadsync::producers {

std::string ReadPosition::text() const {
  return nlohmann::json{{"at", at},
                        {"mapping", mapping},
                        {"snapshot", snapshot},
                        {"mode", mode == ReadMode::kIncremental ? "incremental" : "snapshot"},
                        {"publish_all", publish_all},
                        {"valid_rows", valid_rows},
                        {"unreadable_rows", unreadable_rows}}
      .dump();
}

std::optional<ReadPosition> ReadPosition::parse(const std::string& text) {
  const auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("at") || !j["at"].is_string()) return std::nullopt;
  try {
    ReadPosition p;
    p.at = j["at"].get<std::string>();
    p.mapping = j.value("mapping", "");
    p.snapshot = j.value("snapshot", "");
    p.mode = j.value("mode", "snapshot") == "incremental" ? ReadMode::kIncremental : ReadMode::kSnapshot;
    p.publish_all = j.value("publish_all", false);
    p.valid_rows = j.value("valid_rows", uint64_t{0});
    p.unreadable_rows = j.value("unreadable_rows", uint64_t{0});
    return p;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

std::string mapping_fingerprint(const common::SourceConfig& s, const common::EntityConfig& e,
                                const std::string& target_stamp) {
  std::string text = s.key_column + "\n" + e.name + "\n" + e.key + "\n" + target_stamp + "\n";
  if (const auto* csv = std::get_if<common::CsvSettings>(&s.settings)) {
    text += std::string("encoding ") + common::text_encoding_name(csv->encoding) + "\n";
  }
  for (const auto& [column, field] : s.columns) {
    text += column + "\t" + field + "\n";
    if (const auto* f = e.field(field)) {
      text += std::string(common::field_type_name(f->type)) + "\t" + std::to_string(static_cast<int>(f->normalize)) +
              "\t" + f->separator + "\t" + (f->required ? "r" : "") + "\t" +
              std::to_string(static_cast<int>(f->coerce)) + "\n";
    }
  }
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(XXH3_64bits(text.data(), text.size())));
  return out;
}

}  // namespace leadsync::producers
