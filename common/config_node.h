// The YAML walker of the configuration parsers (config.cc, source_config.cc): keeps the key path,
// so that every error names where it is. Internal to the config parsers.
#pragma once

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "common/errors.h"

namespace leadsync::common::config_detail {

// Walks a YAML tree keeping the key path, so that every error names where it is.
class Node {
 public:
  Node(YAML::Node node, std::string path) : node_(std::move(node)), path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  bool defined() const { return node_.IsDefined() && !node_.IsNull(); }

  [[noreturn]] void fail(const std::string& what) const {
    throw ConfigError("config error at " + path_ + ": " + what);
  }

  Node child(const std::string& key) const {
    return Node(node_[key], path_.empty() ? key : path_ + "." + key);
  }

  void expect_map(std::initializer_list<const char*> allowed) const {
    expect_map(std::vector<std::string>(allowed.begin(), allowed.end()));
  }
  void expect_map(const std::vector<std::string>& allowed) const {
    if (!node_.IsMap()) fail("expected a mapping");
    for (const auto& kv : node_) {
      const auto key = kv.first.as<std::string>();
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        std::string list;
        for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
        child(key).fail("unknown key '" + key + "' (expected one of: " + list + ")");
      }
    }
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

  template <typename E>
  E choice(E fallback, std::initializer_list<std::pair<const char*, E>> options) const {
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
      f(key, child(key));
    }
  }

  template <typename F>
  void each_item(F&& f) const {  // f(Node)
    if (!node_.IsSequence()) fail("expected a list");
    for (std::size_t i = 0; i < node_.size(); ++i) f(Node(node_[i], path_ + "[" + std::to_string(i) + "]"));
  }

 private:
  YAML::Node node_;
  std::string path_;
};

// Lower-case letters, digits and _, starting with a letter or _, at most 63 characters.
bool valid_identifier(const std::string& s);
void check_identifier(const Node& n, const std::string& s);

}  // namespace leadsync::common::config_detail
