// Caching allocator: reuse, statistics, and no system allocation in a steady-state loop.
#include "nsamp/kernels/elementwise.h"
#include "nsamp/kernels/gemm.h"
#include "nsamp/kernels/reduce.h"
#include "test_util.h"

using namespace nsamp;

namespace {
int g_sys_allocs = 0, g_sys_frees = 0;
void* counting_alloc(std::size_t bytes, int) {
  ++g_sys_allocs;
  return std::aligned_alloc(256, (bytes + 255) / 256 * 256);
}
void counting_free(void* p, int) {
  ++g_sys_frees;
  std::free(p);
}
void* failing_alloc(std::size_t, int) { return nullptr; }
}  // namespace

TEST_CASE("allocator: rounding - reuse and statistics" * doctest::test_suite("cpu")) {
  g_sys_allocs = g_sys_frees = 0;
  {
    CachingAllocator a(Device::cpu(), &counting_alloc, &counting_free);
    CHECK(a.allocate(0) == nullptr);
    CHECK(CachingAllocator::round_size(1) == 512);
    CHECK(CachingAllocator::round_size(513) == 1024);
    CHECK(CachingAllocator::round_size((1 << 20) + 1) == (1 << 20) + (128 << 10));

    void* p = a.allocate(1000);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % 256 == 0);
    AllocatorStats s = a.stats();
    CHECK(s.bytes_in_use == 1024);
    CHECK(s.system_allocations == 1);
    a.deallocate(p);
    CHECK(a.stats().bytes_in_use == 0);
    CHECK(a.stats().bytes_reserved == 1024);

    void* q = a.allocate(900);  // same rounded class: served from the cache
    CHECK(q == p);
    s = a.stats();
    CHECK(s.cache_hits == 1);
    CHECK(s.system_allocations == 1);

    void* big = a.allocate(10000);  // a cached block is never handed to a request under half its size
    void* small = a.allocate(100);
    CHECK(a.stats().system_allocations == 3);
    a.deallocate(big);
    void* small2 = a.allocate(100);
    CHECK(small2 != big);
    CHECK(a.stats().peak_bytes_in_use >= 1024 + 10240 + 512);
    a.deallocate(q);
    a.deallocate(small);
    a.deallocate(small2);
    a.reset_peak();
    CHECK(a.stats().peak_bytes_in_use == 0);
    CHECK_THROWS_WITH_AS(a.deallocate(reinterpret_cast<void*>(0x1000)), doctest::Contains("does not own"),
                         Error);
    a.release_cache();
    CHECK(a.stats().bytes_reserved == 0);
    CHECK(g_sys_frees == g_sys_allocs);
  }
  CHECK(g_sys_frees == g_sys_allocs);
}

TEST_CASE("allocator: out of memory names the device and the size" * doctest::test_suite("cpu")) {
  CachingAllocator a(Device::cpu(), &failing_alloc, &counting_free);
  CHECK_THROWS_WITH_AS(a.allocate(12345), doctest::Contains("out of memory allocating 12345 bytes"), Error);
}

NSAMP_DEVICE_TEST("allocator: a steady-state loop of ops allocates nothing from the system") {
  Context ctx(dev, 3);
  const std::size_t base = ctx.allocator().stats().bytes_in_use;  // a CUDA context holds cuBLAS's workspace
  auto step = [&] {
    Tensor x = Tensor::empty(Shape{256, 64}, DType::F32, ctx);
    Tensor w = Tensor::empty(Shape{32, 64}, DType::F32, ctx);
    Tensor y = Tensor::empty(Shape{256, 32}, DType::F32, ctx);
    Tensor l = Tensor::empty(Shape{256}, DType::F32, ctx);
    Tensor c = Tensor::empty(Shape{32}, DType::F32, ctx);
    fill_normal(x, ctx);
    fill_normal(w, ctx);
    kernels::linear(x, w, Tensor(), y, ctx);
    kernels::activation_forward(kernels::Activation::SiLU, y, y, ctx);
    kernels::row_logsumexp(y, l, ctx);
    kernels::col_sum(y, c, ctx);  // uses a workspace on CUDA
  };
  step();
  step();
  ctx.synchronize();
  const AllocatorStats warm = ctx.allocator().stats();
  for (int i = 0; i < 20; ++i) step();
  ctx.synchronize();
  const AllocatorStats after = ctx.allocator().stats();
  CHECK(after.system_allocations == warm.system_allocations);
  CHECK(after.cache_hits > warm.cache_hits);
  CHECK(after.bytes_in_use == warm.bytes_in_use);
  CHECK(after.bytes_in_use == base);
  CHECK(after.peak_bytes_in_use == warm.peak_bytes_in_use);
}
