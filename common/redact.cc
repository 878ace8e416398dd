#include "common/redact.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <regex>

namespace leadsync::common {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

// Parts of a parameter or header name that mark its value as a secret.
bool names_a_secret(std::string_view name) {
  static constexpr std::array<std::string_view, 11> kParts = {
      "token", "key", "secret", "password", "passwd", "pwd", "signature", "sig", "auth", "credential", "code"};
  const auto n = lower(name);
  return std::any_of(kParts.begin(), kParts.end(), [&](std::string_view p) { return n.find(p) != std::string::npos; });
}

// Applies `re` to `text`, replacing group `keep`'s match followed by kRedacted for every match.
std::string replace_each(const std::string& text, const std::regex& re,
                         const std::function<std::string(const std::smatch&)>& replacement) {
  std::string out;
  auto begin = text.cbegin();
  for (std::sregex_iterator it(text.begin(), text.end(), re), end; it != end; ++it) {
    out.append(begin, (*it)[0].first);
    out += replacement(*it);
    begin = (*it)[0].second;
  }
  out.append(begin, text.cend());
  return out;
}

}  // namespace

std::string redact(std::string_view input) {
  // Every log line passes through here: skip the regular expressions for text that cannot match.
  const auto has = [&](std::string_view needle) { return input.find(needle) != std::string_view::npos; };
  if (!has("@") && !has("=") && !has("\"") && !has("earer") && !has("EARER") && !has("asic") && !has("ASIC") &&
      !has(":")) {
    return std::string(input);
  }
  const std::string r(kRedacted);
  std::string text(input);

  // scheme://user:password@  and, for http(s), scheme://token@
  static const std::regex userinfo(R"(([A-Za-z][A-Za-z0-9+.\-]*://)([^\s/@:?#]*)(:[^\s/]*)?@)");
  text = replace_each(text, userinfo, [&](const std::smatch& m) {
    const auto scheme = lower(m[1].str());
    if (m[3].matched) return m[1].str() + m[2].str() + ":" + r + "@";
    if (scheme.starts_with("http")) return m[1].str() + r + "@";
    return m[0].str();  // postgresql://user@host: a user name, not a secret
  });

  // ?name=value&name=value: the value of every parameter whose name marks a secret.
  static const std::regex query_param(R"(([?&;])([^=&\s#"']+)=([^&\s#"']*))");
  text = replace_each(text, query_param, [&](const std::smatch& m) {
    if (!names_a_secret(m[2].str()) || m[3].length() == 0) return m[0].str();
    return m[1].str() + m[2].str() + "=" + r;
  });

  // libpq conninfo: password=secret, password = 'sec ret', password=... inside any text.
  static const std::regex conninfo_password(R"((password\s*=\s*)('(?:[^'\\]|\\.)*'?|[^\s&]+))",
                                            std::regex::icase);
  text = std::regex_replace(text, conninfo_password, "$1" + r);

  // What libpq echoes from a conninfo it cannot parse: usually a password cut at a space or '%'.
  static const std::regex libpq_echo(
      R"(((?:missing "=" after|invalid percent-encoded token:|invalid connection option) ")[^"]*("))");
  text = std::regex_replace(text, libpq_echo, "$1" + r + "$2");

  // Authorization: <anything to the end of the line>, and bare Bearer/Basic credentials.
  static const std::regex auth_header(R"(((?:proxy-)?authorization\s*[:=]\s*)[^\r\n,;]+)", std::regex::icase);
  text = std::regex_replace(text, auth_header, "$1" + r);
  static const std::regex bearer(R"(\b(bearer|basic)\s+(?!\*\*\*)[A-Za-z0-9._~+/=\-]+)", std::regex::icase);
  text = std::regex_replace(text, bearer, "$1 " + r);
  return text;
}

std::string redact_header(std::string_view name, std::string_view value) {
  const auto n = lower(name);
  if (n == "cookie" || n == "set-cookie" || names_a_secret(n)) return std::string(kRedacted);
  return redact(value);
}

}  // namespace leadsync::common
