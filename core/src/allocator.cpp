#include "nsamp/core/allocator.h"

#include <cstdlib>
#include <new>
#include <utility>

#include "cuda_runtime_internal.h"
#include "nsamp/core/config.h"
#include "nsamp/core/error.h"

namespace nsamp {

namespace {
constexpr std::size_t kSmallLimit = std::size_t(1) << 20;
constexpr std::size_t kSmallGranule = 512;
constexpr std::size_t kLargeGranule = std::size_t(128) << 10;

std::size_t round_up(std::size_t n, std::size_t m) { return (n + m - 1) / m * m; }

void* host_alloc(std::size_t bytes, int /*device_index*/) {
  return std::aligned_alloc(256, round_up(bytes, 256));
}
void host_free(void* p, int /*device_index*/) { std::free(p); }
}  // namespace

CachingAllocator::CachingAllocator(Device device, SystemAlloc sys_alloc, SystemFree sys_free)
    : device_(device), sys_alloc_(sys_alloc), sys_free_(sys_free) {}

CachingAllocator::~CachingAllocator() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cache_locked();
  // Live blocks at destruction mean a tensor outlived its allocator's owners; tensors hold a shared_ptr to
  // the allocator, so this only happens through misuse of raw allocate(). Free them rather than leak.
  for (auto& [ptr, size] : live_blocks_) sys_free_(ptr, device_.index);
  for (auto& [id, pool] : pools_) {
    for (auto& [size, ptr] : pool.free_blocks) sys_free_(ptr, device_.index);
    for (auto& [ptr, size] : pool.held) sys_free_(ptr, device_.index);
  }
}

void* CachingAllocator::take_best_fit(std::multimap<std::size_t, void*>& blocks, std::size_t size,
                                      std::size_t* got) {
  auto it = blocks.lower_bound(size);
  if (it == blocks.end() || it->first / 2 > size) return nullptr;
  void* ptr = it->second;
  *got = it->first;
  blocks.erase(it);
  return ptr;
}

std::size_t CachingAllocator::round_size(std::size_t bytes) {
  return bytes < kSmallLimit ? round_up(bytes, kSmallGranule) : round_up(bytes, kLargeGranule);
}

void* CachingAllocator::allocate(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  const std::size_t size = round_size(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  stats_.allocations++;
  std::size_t got = size;
  void* ptr = take_best_fit(open_pool_ ? pools_[open_pool_].free_blocks : free_blocks_, size, &got);
  if (!ptr && open_pool_) {
    // A capture may take an ordinary cached block (no graph addresses those; reuse is stream-ordered), so
    // that successive captures recycle memory instead of each growing the reserve.
    ptr = take_best_fit(free_blocks_, size, &got);
    if (ptr) block_pool_.emplace(ptr, open_pool_);
  }
  if (ptr) {
    stats_.cache_hits++;
  } else {
    ptr = sys_alloc_(size, device_.index);
    // Out of memory: give the cache back and try once more, but never during a capture (cudaFree would
    // synchronise the capturing stream).
    if (!ptr && !free_blocks_.empty() && !open_pool_) {
      release_cache_locked();
      ptr = sys_alloc_(size, device_.index);
    }
    NSAMP_CHECK(ptr != nullptr, "allocator(", device_.str(), "): out of memory allocating ", bytes,
                " bytes (in use ", stats_.bytes_in_use, ", reserved ", stats_.bytes_reserved, ")");
    stats_.system_allocations++;
    stats_.bytes_reserved += size;
    if (open_pool_) block_pool_.emplace(ptr, open_pool_);
  }
  live_blocks_.emplace(ptr, got);
  stats_.bytes_in_use += got;
  if (stats_.bytes_in_use > stats_.peak_bytes_in_use) stats_.peak_bytes_in_use = stats_.bytes_in_use;
  return ptr;
}

void CachingAllocator::deallocate(void* ptr) {
  if (!ptr) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = live_blocks_.find(ptr);
  NSAMP_CHECK(it != live_blocks_.end(), "allocator(", device_.str(),
              "): deallocate of a pointer it does not own");
  const std::size_t size = it->second;
  live_blocks_.erase(it);
  stats_.bytes_in_use -= size;
  auto pool = block_pool_.find(ptr);
  if (pool != block_pool_.end() && (open_pool_ == 0 || pool->second == open_pool_)) {
    pools_[pool->second].free_blocks.emplace(size, ptr);
  } else if (open_pool_) {
    // From outside the open pool: the capture addresses it, so the open pool holds it back. A block of
    // another pool keeps that pool as its owner (its graph addresses it too): it returns to that pool, not to
    // the cache, when the holding pool is released first.
    pools_[open_pool_].held.emplace_back(ptr, size);
  } else {
    free_blocks_.emplace(size, ptr);
  }
}

std::uint64_t CachingAllocator::begin_pool() {
  std::lock_guard<std::mutex> lock(mu_);
  NSAMP_CHECK(open_pool_ == 0, "allocator(", device_.str(), "): a capture pool is already open");
  open_pool_ = next_pool_++;
  pools_[open_pool_];
  return open_pool_;
}

void CachingAllocator::end_pool() {
  std::lock_guard<std::mutex> lock(mu_);
  open_pool_ = 0;
}

void CachingAllocator::release_pool(std::uint64_t id) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pools_.find(id);
  if (it == pools_.end()) return;
  if (open_pool_ == id) open_pool_ = 0;
  Pool pool = std::move(it->second);
  pools_.erase(it);
  for (auto& [size, ptr] : pool.free_blocks) free_blocks_.emplace(size, ptr);
  for (auto& [ptr, size] : pool.held) {
    const auto owner = block_pool_.find(ptr);
    if (owner != block_pool_.end() && owner->second != id && pools_.count(owner->second))
      pools_[owner->second].free_blocks.emplace(size, ptr);  // its owner's graph still addresses it
    else
      free_blocks_.emplace(size, ptr);
  }
  for (auto b = block_pool_.begin(); b != block_pool_.end();)  // live blocks return to the cache when freed
    b = b->second == id ? block_pool_.erase(b) : std::next(b);
}

AllocatorStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_bytes_in_use = stats_.bytes_in_use;
}

void CachingAllocator::release_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  release_cache_locked();
}

void CachingAllocator::release_cache_locked() {
  for (auto& [size, ptr] : free_blocks_) {
    sys_free_(ptr, device_.index);
    stats_.system_frees++;
    stats_.bytes_reserved -= size;
  }
  free_blocks_.clear();
}

std::shared_ptr<Allocator> make_caching_allocator(Device device) {
  if (device.is_cpu()) return std::make_shared<CachingAllocator>(device, &host_alloc, &host_free);
  if constexpr (kCudaBuilt) {
    return std::make_shared<CachingAllocator>(device, &detail::cuda_malloc_or_null, &detail::cuda_free);
  }
  NSAMP_FAIL("allocator: cannot allocate on ", device.str(),
             ": nsamp was built without CUDA (NSAMP_CUDA=OFF)");
}

}  // namespace nsamp
