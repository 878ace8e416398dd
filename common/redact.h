// The one place that removes secrets from text before it reaches a log line, an error message, a
// metric label, `leadsyncctl` output or a row of leadsync.sync_runs (issue 7 item 18). Every
// producer of such text calls redact(); the narrower helpers exist for call sites that know what
// they hold (a header, a URL) and want the cheaper, exact form.
#pragma once

#include <string>
#include <string_view>

namespace leadsync::common {

// What replaces a secret.
inline constexpr std::string_view kRedacted = "***";

// Redacts, anywhere in free text (an error, a URL, a libpq conninfo string):
//   - URL userinfo: the password of scheme://user:password@host; for http(s), a userinfo without a
//     password as well (a token used as the user name);
//   - query-string values whose parameter names a secret (token, key, secret, password, signature,
//     code, auth, credential, …, matched case-insensitively as a part of the name: access_token,
//     apiKey, X-Amz-Signature);
//   - libpq conninfo passwords (password=… plain or 'quoted'), including the tokens libpq echoes
//     when it cannot parse a conninfo string (missing "=" after "…", invalid percent-encoded
//     token: "…") — they are usually a password cut at a space or a percent sign;
//   - Authorization / Proxy-Authorization header values and "Bearer …" / "Basic …" credentials.
// Text without any of these is returned unchanged.
std::string redact(std::string_view text);

// The value of an HTTP header as it may be logged: "***" for headers that carry credentials
// (Authorization, Proxy-Authorization, Cookie, Set-Cookie, and any name containing token, key,
// secret, password or auth), the value with redact() applied otherwise.
std::string redact_header(std::string_view name, std::string_view value);

}  // namespace leadsync::common
