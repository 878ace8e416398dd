#include "producers/temp_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

namespace leadsync::producers {
namespace {

std::vector<char> writable(const std::string& s) { return std::vector<char>(s.c_str(), s.c_str() + s.size() + 1); }

}  // namespace

PrivateTempFile::PrivateTempFile(const std::string& parent, const std::string& prefix) {
  auto dir = writable((std::filesystem::path(parent) / "leadsync-XXXXXX").string());
  if (!::mkdtemp(dir.data())) {
    throw std::runtime_error("cannot create a private directory under " + parent + ": " + std::strerror(errno));
  }
  dir_ = dir.data();
  auto file = writable(dir_ + "/" + prefix + "-XXXXXX");
  const int fd = ::mkstemp(file.data());
  if (fd < 0) {
    const int err = errno;
    std::error_code ec;
    std::filesystem::remove(dir_, ec);
    throw std::runtime_error("cannot create a file in " + dir_ + ": " + std::strerror(err));
  }
  ::close(fd);
  path_ = file.data();
}

PrivateTempFile::~PrivateTempFile() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

}  // namespace leadsync::producers
