// Caching allocators: after warm-up, a steady-state loop gets every buffer from the cache, so no
// cudaMalloc/cudaFree (or malloc/free) happens inside a training step. Statistics are exposed for tests.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nsamp/core/types.h"

namespace nsamp {

struct AllocatorStats {
  std::size_t bytes_in_use = 0;       // handed out to live buffers (rounded sizes)
  std::size_t peak_bytes_in_use = 0;  // high-water mark of bytes_in_use since the last reset_peak()
  std::size_t bytes_reserved = 0;     // obtained from the system: in use plus cached
  std::uint64_t allocations = 0;      // allocate() calls with a non-zero size
  std::uint64_t cache_hits = 0;       // of those, served from the cache
  std::uint64_t system_allocations = 0;
  std::uint64_t system_frees = 0;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Returns nullptr for 0 bytes; otherwise memory aligned to at least 256 bytes, or throws nsamp::Error.
  virtual void* allocate(std::size_t bytes) = 0;
  virtual void deallocate(void* ptr) = 0;  // nullptr is a no-op
  virtual Device device() const = 0;
  virtual AllocatorStats stats() const = 0;
  virtual void reset_peak() = 0;
  virtual void release_cache() = 0;  // return every cached (unused) block to the system

  // Capture pools, for CUDA graphs (core/step_graph.h), which replay their kernels on the addresses they were
  // captured with. Between begin_pool() and end_pool() every allocation is served from a pool of its own, and
  // a block from outside the pool that is freed meanwhile is held back (the graph still addresses it). After
  // end_pool() the pool's blocks, when freed, go back to the pool and never to anyone else, so nothing
  // outside the graph writes to them between replays. release_pool() (when the graph is destroyed, its work
  // done) hands pool and held blocks back to the ordinary cache, except a held block of another pool still
  // alive (two graphs address it), which goes back to that pool. One pool is open at a time.
  virtual std::uint64_t begin_pool() = 0;
  virtual void end_pool() = 0;
  virtual void release_pool(std::uint64_t id) = 0;
};

// Best-fit cache over whole blocks (no splitting). Sizes are rounded up (512 B granularity below 1 MiB,
// 128 KiB above) and a cached block is reused for a request at least half its size. Thread-safe.
// Blocks are reused in host order: for a CUDA allocator this is safe because every buffer of one allocator is
// only ever used on its context's single stream (stream-ordered reuse).
class CachingAllocator final : public Allocator {
 public:
  using SystemAlloc = void* (*)(std::size_t bytes, int device_index);
  using SystemFree = void (*)(void* ptr, int device_index);

  CachingAllocator(Device device, SystemAlloc sys_alloc, SystemFree sys_free);
  ~CachingAllocator() override;
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  void* allocate(std::size_t bytes) override;
  void deallocate(void* ptr) override;
  Device device() const override { return device_; }
  AllocatorStats stats() const override;
  void reset_peak() override;
  void release_cache() override;
  std::uint64_t begin_pool() override;
  void end_pool() override;
  void release_pool(std::uint64_t id) override;

  static std::size_t round_size(std::size_t bytes);

 private:
  void release_cache_locked();
  void* take_best_fit(std::multimap<std::size_t, void*>& blocks, std::size_t size, std::size_t* got);

  struct Pool {
    std::multimap<std::size_t, void*> free_blocks;    // size -> block, reusable by this pool only
    std::vector<std::pair<void*, std::size_t>> held;  // outside blocks freed during the capture
  };

  Device device_;
  SystemAlloc sys_alloc_;
  SystemFree sys_free_;
  mutable std::mutex mu_;
  std::multimap<std::size_t, void*> free_blocks_;        // size -> block
  std::unordered_map<void*, std::size_t> live_blocks_;   // block -> size
  std::unordered_map<void*, std::uint64_t> block_pool_;  // blocks of a capture pool -> its id
  std::map<std::uint64_t, Pool> pools_;
  std::uint64_t open_pool_ = 0, next_pool_ = 1;
  AllocatorStats stats_;
};

// A caching allocator over aligned host memory (pageable) or over cudaMalloc on the given device.
std::shared_ptr<Allocator> make_caching_allocator(Device device);

}  // namespace nsamp
