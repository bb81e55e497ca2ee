// Files that readers never see half-written: bytes go to PATH.tmp, which is flushed to disk (fsync) and then
// renamed over PATH, and the directory entry is synced too. A process killed at any moment leaves either the
// old file or the new one (and perhaps a stale PATH.tmp, which the next write replaces).
//
// Fault injection for tests: with NSAMP_TEST_KILL_DURING_WRITE=SUBSTRING[:N], the N-th (default 1st) atomic
// write whose path contains SUBSTRING kills its own process (SIGKILL) after writing half of its bytes.
#pragma once

#include <cstddef>
#include <string>

namespace nsamp {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // creates PATH.tmp; throws naming the path and errno
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;
  ~AtomicFile();  // without commit(): the temporary file is removed, PATH is untouched

  void write(const void* data, std::size_t n);
  void commit();  // fsync, close, rename over PATH, fsync the directory
  const std::string& path() const { return path_; }

 private:
  void fail(const std::string& what);
  std::string path_, tmp_;
  int fd_ = -1;
  bool kill_half_ = false;
};

// One call for text or bytes already in memory.
void write_file_atomic(const std::string& path, const std::string& bytes);

}  // namespace nsamp
