// libFuzzer target: coercion of an arbitrary cell into every field type. A value that coerces must
// be one that check_value accepts (what the worker validates), and its checksum must be stable.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/mapping.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leadsync::common;
  if (size == 0) return 0;
  // The first byte picks the field's settings; the rest is the cell.
  FieldConfig f;
  f.name = "f";
  f.type = static_cast<FieldType>(data[0] % 8);
  f.required = (data[0] & 0x08) != 0;
  f.normalize = (f.type == FieldType::kText || f.type == FieldType::kTextList) ? static_cast<Normalize>((data[0] >> 4) % 4)
                                                                               : Normalize::kNone;
  const std::string_view raw(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string error;
  const auto value = coerce_text(f, raw, error);
  if (!value) {
    if (error.empty()) std::abort();  // a rejection always says why
    return 0;
  }
  if (!check_value(f, *value).empty()) std::abort();
  FieldMap fields;
  fields["f"] = *value;
  if (fields_checksum(fields) != fields_checksum(fields)) std::abort();
  (void)describe_value(*value);
  return 0;
}
