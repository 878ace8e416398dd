// A private scratch file: mkstemp inside a fresh mkdtemp directory (mode 0700), both removed on
// destruction. Never a predictable name in a shared directory (a /tmp/<source name> path could be
// pre-created as a symlink by another user, and would be shared by two runs of one source).
#pragma once

#include <string>

namespace leadsync::producers {

class PrivateTempFile {
 public:
  // Creates the directory under `parent` and an empty file in it named after `prefix` (which must
  // be a safe file name part). Throws std::runtime_error with the system's reason.
  PrivateTempFile(const std::string& parent, const std::string& prefix);
  ~PrivateTempFile();
  PrivateTempFile(const PrivateTempFile&) = delete;
  PrivateTempFile& operator=(const PrivateTempFile&) = delete;

  const std::string& path() const noexcept { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

}  // namespace leadsync::producers
