// libFuzzer target: decoding arbitrary bytes as a ChangeEvent (what a worker does with every
// message) and checking its fields against an entity, as the worker's validation does.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/mapping.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace leadsync::common;
  ChangeEvent event;
  if (!event.ParseFromArray(data, static_cast<int>(size))) return 0;
  static const FieldConfig kFields[] = {
      {"name", FieldType::kText},        {"score", FieldType::kInt},   {"rate", FieldType::kFloat},
      {"ok", FieldType::kBool},          {"at", FieldType::kTimestamp}, {"day", FieldType::kDate},
      {"tags", FieldType::kTextList},    {"doc", FieldType::kJson},
  };
  for (const auto& f : kFields) {
    const auto it = event.fields().find(f.name);
    if (it != event.fields().end()) (void)check_value(f, it->second);
  }
  (void)fields_checksum(event.fields());
  std::string again;
  event.SerializeToString(&again);
  return 0;
}
