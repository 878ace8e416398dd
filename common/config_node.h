// The YAML walker of the configuration parsers (config.cc, source_config.cc): keeps the key path,
// so that every error names where it is, and the schema path for accepted_config_keys().
// Internal to the config parsers.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"
#include "common/errors.h"

namespace leadsync::common::config_detail {

// Filled while parsing only when accepted_config_keys() asks for it: every key each mapping accepts
// and every value each enumerated key accepts, so that docs/configuration.md is checked against the
// loader itself rather than against a list kept by hand.
extern thread_local ConfigSchema* t_schema;

inline std::string schema_join(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// Walks a YAML tree keeping the key path, so that every error names where it is. Beside the path it
// keeps the schema path (list items as `[]`, user-named entries such as entities as `<name>`).
class Node {
 public:
  Node(YAML::Node node, std::string path) : Node(std::move(node), path, path) {}
  Node(YAML::Node node, std::string path, std::string schema)
      : node_(std::move(node)), path_(std::move(path)), schema_(std::move(schema)) {}

  const std::string& path() const { return path_; }
  bool defined() const { return node_.IsDefined() && !node_.IsNull(); }

  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError("config error at " + path_ + ": " + what);
  }

  Node child(const std::string& key) const {
    return Node(node_[key], path_.empty() ? key : path_ + "." + key, schema_join(schema_, key));
  }

  void expect_map(std::initializer_list<const char*> allowed) const {
    expect_map(std::vector<std::string>(allowed.begin(), allowed.end()));
  }
  void expect_map(const std::vector<std::string>& allowed) const {
    if (!node_.IsMap()) fail("expected a mapping");
    if (t_schema) {
      for (const auto& a : allowed) t_schema->keys.insert(schema_join(schema_, a));
    }
    for (const auto& kv : node_) {
      const auto key = kv.first.as<std::string>();
      if (t_schema) t_schema->present.insert(schema_join(schema_, key));
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        child(key).fail("unknown key '" + key + "' (expected one of: " + list + ")");
      }
    }
  }

  // The keys of a mapping, in order (empty when it is not one).
  std::vector<std::string> keys() const {
    std::vector<std::string> out;
    if (!node_.IsMap()) return out;
    for (const auto& kv : node_) out.push_back(kv.first.as<std::string>());
    return out;
  }

  // The same node under another schema path: a recursive structure (a rule's condition) is then
  // documented once, whatever its depth. The alias lets a walker of the YAML find it.
  Node with_schema(const std::string& schema) const {
    if (t_schema) t_schema->aliases[schema_] = schema;
    return Node(node_, path_, schema);
  }

  // The subtree as YAML text (a fingerprint of a section).
  std::string dump() const { return YAML::Dump(node_); }

  double number() const {
    if (!node_.IsScalar()) fail("expected a number");
    const auto text = node_.as<std::string>();
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v)) fail("expected a number, got '" + text + "'");
    return v;
  }

  std::string str() const {
    if (!node_.IsScalar()) fail("expected a string");
    return node_.as<std::string>();
  }
  std::string str_or(const std::string& fallback) const { return defined() ? str() : fallback; }
  std::string required_str() const {
    if (!defined()) fail("is required");
    auto s = str();
    if (s.empty()) fail("must not be empty");
    return s;
  }

  int integer(int fallback, int min, int max) const {
    if (!defined()) return fallback;
    if (!node_.IsScalar()) fail("expected an integer");
    const auto text = node_.as<std::string>();
    char* end = nullptr;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end != '\0') fail("expected an integer, got '" + text + "'");
    if (v < min || v > max) {
      fail("value " + text + " out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
    }
    return static_cast<int>(v);
  }

  bool boolean(bool fallback) const {
    if (!defined()) return fallback;
    const auto text = str();
    if (text == "true") return true;
    if (text == "false") return false;
    fail("expected true or false, got '" + text + "'");
  }

  // Records the values an enumerated key accepts when they are not known at compile time.
  void allow_values(const std::vector<std::string>& values) const {
    if (t_schema) t_schema->values[schema_].insert(values.begin(), values.end());
  }

  template <typename E>
  E choice(E fallback, std::initializer_list<std::pair<const char*, E>> options) const {
    if (t_schema) {
      for (const auto& option : options) t_schema->values[schema_].insert(option.first);
    }
    if (!defined()) return fallback;
    const auto text = str();
    std::string list;
    for (const auto& [name, value] : options) {
      if (text == name) return value;
      list += (list.empty() ? "" : ", ") + std::string(name);
    }
    fail("unknown value '" + text + "' (expected one of: " + list + ")");
  }

  std::vector<std::string> str_list() const {
    std::vector<std::string> out;
    if (!defined()) return out;
    if (!node_.IsSequence()) fail("expected a list of strings");
    for (std::size_t i = 0; i < node_.size(); ++i) {
      out.push_back(Node(node_[i], path_ + "[" + std::to_string(i) + "]").str());
    }
    return out;
  }

  template <typename F>
  void each_entry(F&& f) const {  // f(key, Node)
    if (!node_.IsMap()) fail("expected a mapping");
    for (const auto& kv : node_) {
      const auto key = kv.first.as<std::string>();
      f(key, Node(node_[key], path_.empty() ? key : path_ + "." + key, schema_join(schema_, "<name>")));
    }
  }

  template <typename F>
  void each_item(F&& f) const {  // f(Node)
    if (!node_.IsSequence()) fail("expected a list");
    for (std::size_t i = 0; i < node_.size(); ++i) {
      f(Node(node_[i], path_ + "[" + std::to_string(i) + "]", schema_ + "[]"));
    }
  }

 private:
  YAML::Node node_;
  std::string path_;
  std::string schema_;
};

// Lower-case letters, digits and _, starting with a letter or _, at most 63 characters.
bool valid_identifier(const std::string& s);
void check_identifier(const Node& n, const std::string& s);

}  // namespace leadsync::common::config_detail
