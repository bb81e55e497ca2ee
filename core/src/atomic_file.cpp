#include "nsamp/core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "nsamp/core/error.h"

namespace nsamp {

namespace {

// Whether this write is the one NSAMP_TEST_KILL_DURING_WRITE asks to die in.
bool fault_injected(const std::string& path) {
  const char* env = std::getenv("NSAMP_TEST_KILL_DURING_WRITE");
  if (!env || !*env) return false;
  std::string spec(env), sub = spec;
  long nth = 1;
  const std::size_t colon = spec.rfind(':');
  if (colon != std::string::npos) {
    sub = spec.substr(0, colon);
    nth = std::strtol(spec.c_str() + colon + 1, nullptr, 10);
  }
  if (path.find(sub) == std::string::npos) return false;
  static std::atomic<long> seen{0};
  return ++seen == nth;
}

std::string parent_dir(const std::string& path) {
  const std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) NSAMP_FAIL("cannot create ", tmp_, " (to write ", path_, "): ", std::strerror(errno));
  kill_half_ = fault_injected(path_);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::fail(const std::string& what) {
  const int err = errno;
  ::close(fd_);
  ::unlink(tmp_.c_str());
  fd_ = -1;
  NSAMP_FAIL(what, " ", tmp_, " (to write ", path_, "): ", std::strerror(err));
}

void AtomicFile::write(const void* data, std::size_t n) {
  NSAMP_CHECK(fd_ >= 0, "AtomicFile(", path_, "): write after commit or failure");
  const char* p = static_cast<const char*>(data);
  if (kill_half_) {
    const std::size_t half = n / 2;
    for (std::size_t done = 0; done < half;) {
      const ssize_t w = ::write(fd_, p + done, half - done);
      if (w <= 0) break;
      done += std::size_t(w);
    }
    ::fsync(fd_);
    std::raise(SIGKILL);
  }
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail("write failed (disk full?) on");
    p += w;
    n -= std::size_t(w);
  }
}

void AtomicFile::commit() {
  NSAMP_CHECK(fd_ >= 0, "AtomicFile(", path_, "): commit twice or after a failure");
  if (::fsync(fd_) != 0) fail("fsync failed on");
  if (::close(fd_) != 0) {
    fd_ = -1;
    ::unlink(tmp_.c_str());
    NSAMP_FAIL("close failed on ", tmp_, " (to write ", path_, "): ", std::strerror(errno));
  }
  fd_ = -1;
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp_.c_str());
    NSAMP_FAIL("cannot move ", tmp_, " into place as ", path_, ": ", std::strerror(err));
  }
  // The rename is durable once the directory is synced; failing to open it (odd filesystems) is not fatal.
  const int dfd = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
  AtomicFile f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace nsamp
