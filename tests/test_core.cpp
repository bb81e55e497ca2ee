// core: shapes, devices, the CPU instruction-set check, tensors, views, copies, contexts and their error
// messages.
#include "nsamp/core/config.h"
#include "nsamp/core/cpu_arch.h"
#include "nsamp/core/device.h"
#include "test_util.h"

using namespace nsamp;

TEST_CASE("shape: rank - element count - 2-D view and printing" * doctest::test_suite("cpu")) {
  const Shape s{2, 3, 4};
  CHECK(s.rank() == 3);
  CHECK(s.numel() == 24);
  CHECK(s.rows() == 6);
  CHECK(s.cols() == 4);
  CHECK(s.str() == "[2, 3, 4]");
  CHECK(Shape{}.numel() == 1);
  CHECK(Shape{}.rows() == 1);
  CHECK(Shape{0, 5}.numel() == 0);
  CHECK(Shape{7}.rows() == 1);
  CHECK(Shape{2, 3} != Shape{3, 2});
  CHECK_THROWS_WITH_AS(Shape({1, 2, 3, 4, 5}), doctest::Contains("rank 5"), Error);
  CHECK_THROWS_WITH_AS(Shape({3, -1}), doctest::Contains("negative dimension -1"), Error);
  CHECK_THROWS_WITH_AS(Shape({1LL << 40, 1LL << 40}), doctest::Contains("overflows"), Error);
  CHECK_THROWS_AS((void)s[3], Error);
}

TEST_CASE("device: parsing - names and discovery" * doctest::test_suite("cpu")) {
  CHECK(parse_device("cpu") == Device::cpu());
  CHECK(parse_device("cuda") == Device::cuda(0));
  CHECK(parse_device("cuda:3") == Device::cuda(3));
  CHECK(Device::cuda(1).str() == "cuda:1");
  CHECK(parse_device("auto") == default_device());
  CHECK_THROWS_WITH_AS(parse_device("gpu"), doctest::Contains("'gpu' is not a device"), Error);
  CHECK_THROWS_AS(parse_device("cuda:x"), Error);
  CHECK_THROWS_AS(parse_device("cuda:"), Error);
  if (!kCudaBuilt) CHECK(cuda_device_count() == 0);
  CHECK(cuda_device_count() == static_cast<int>(cuda_devices().size()));
}

TEST_CASE("cpu arch: the build's instruction set runs here - and the feature list is parsed name by name" *
          doctest::test_suite("cpu")) {
  CHECK(std::string(built_cpu_arch()).size() > 0);
  CHECK(missing_cpu_features() == "");  // the test could not have started otherwise, but the list is parsed
  CHECK(detail::missing_cpu_features("") == "");
  CHECK(detail::missing_cpu_features(" , ,") == "");
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  // The same answer as asking the CPU directly, in the order given, whatever this CPU has.
  __builtin_cpu_init();
  std::string expect;
  const auto want = [&](const char* name, bool has) {
    if (!has) expect += (expect.empty() ? "" : " ") + std::string(name);
  };
  want("avx2", __builtin_cpu_supports("avx2"));
  want("avx512f", __builtin_cpu_supports("avx512f"));
  want("bmi2", __builtin_cpu_supports("bmi2"));
  want("avx512vl", __builtin_cpu_supports("avx512vl"));
  want("fma", __builtin_cpu_supports("fma"));
  CHECK(detail::missing_cpu_features("avx2,avx512f bmi2;avx512vl, fma") == expect);
  CHECK_THROWS_WITH_AS(detail::missing_cpu_features("avx2 sse9"), doctest::Contains("sse9 is not a feature"),
                       Error);
#endif
}

TEST_CASE("context: a CUDA context fails clearly where no GPU can be used" * doctest::test_suite("cpu")) {
  if (cuda_device_count() > 0) {
    CHECK_THROWS_WITH_AS(Context(Device::cuda(999)), doctest::Contains("cuda:999 is not available"), Error);
  } else {
    CHECK_THROWS_AS(Context(Device::cuda(0)), Error);
  }
  Context cpu;
  CHECK_THROWS_WITH_AS((void)cpu.stream(), doctest::Contains("CPU context"), Error);
  CHECK_THROWS_WITH_AS((void)cpu.allocator_for(Device::cuda(0)),
                       doctest::Contains("cannot allocate on cuda:0"), Error);
}

TEST_CASE("context: RNG state is reserved in counters and can be set" * doctest::test_suite("cpu")) {
  Context ctx(Device::cpu(), 42);
  CHECK(ctx.seed() == 42);
  CHECK(ctx.reserve_rng(10) == 0);
  CHECK(ctx.reserve_rng(5) == 10);
  CHECK(ctx.rng_offset() == 15);
  ctx.set_rng_state(7, 100);
  CHECK(ctx.seed() == 7);
  CHECK(ctx.reserve_rng(1) == 100);
}

NSAMP_DEVICE_TEST("tensor: round trip through the device keeps every value") {
  Context ctx(dev);
  for (DType dt : {DType::F32, DType::F64}) {
    std::vector<double> v(37);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(1.7 * double(i)) * 1e3;
    Tensor t = test::from_doubles(v, Shape{37}, dt, dev, ctx);
    CHECK(t.device() == dev);
    CHECK(t.dtype() == dt);
    CHECK(t.nbytes() == 37 * dtype_size(dt));
    test::check_close(test::to_doubles(t, ctx),
                      test::to_doubles(test::from_doubles(v, Shape{37}, dt, Device::cpu(), ctx), ctx), 0, 0,
                      "round trip");
    Tensor h = t.to(Device::cpu(), ctx);
    Tensor back = h.to(dev, ctx);
    test::check_close(test::to_doubles(back, ctx), test::to_doubles(h, ctx), 0, 0, "host -> device -> host");
    Tensor c = t.clone(ctx);
    CHECK_FALSE(c.same_storage(t));
  }
  // to_doubles widens every dtype, int32 indices included, straight from the device.
  const Tensor idx = Tensor::from_vector(std::vector<std::int32_t>{-7, 0, 2147483647}, Shape{3}, dev, ctx);
  CHECK(idx.to_doubles(ctx) == std::vector<double>{-7.0, 0.0, 2147483647.0});
  const Tensor f = Tensor::from_vector(std::vector<float>{0.1f, -2.5f}, Shape{2}, dev, ctx);
  CHECK(f.to_doubles(ctx) == std::vector<double>{double(0.1f), -2.5});
}

NSAMP_DEVICE_TEST("tensor: zeros - empty tensors and zero-size copies") {
  Context ctx(dev);
  Tensor z = Tensor::zeros(Shape{5, 3}, DType::F64, ctx);
  for (double v : z.to_vector<double>(ctx)) CHECK(v == 0.0);
  Tensor e = Tensor::empty(Shape{0, 3}, DType::F32, ctx);
  CHECK(e.numel() == 0);
  CHECK(e.to_vector<float>(ctx).empty());
  Tensor e2 = e.to(Device::cpu(), ctx);
  CHECK(e2.shape() == Shape{0, 3});
  zero(e, ctx);
}

NSAMP_DEVICE_TEST("tensor: row slices and reshapes are views of one buffer") {
  Context ctx(dev);
  std::vector<double> v(24);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = double(i);
  Tensor t = test::from_doubles(v, Shape{6, 4}, DType::F64, dev, ctx);
  Tensor mid = t.slice_rows(2, 5);
  CHECK(mid.shape() == Shape{3, 4});
  CHECK(mid.same_storage(t));
  const std::vector<double> m = mid.to_vector<double>(ctx);
  CHECK(m.front() == 8.0);
  CHECK(m.back() == 19.0);
  // Writing through the view changes the parent.
  Tensor ones = test::from_doubles(std::vector<double>(12, -1.0), Shape{3, 4}, DType::F64, dev, ctx);
  copy(ones, mid, ctx);
  const std::vector<double> after = t.to_vector<double>(ctx);
  CHECK(after[7] == 7.0);
  CHECK(after[8] == -1.0);
  CHECK(after[19] == -1.0);
  CHECK(after[20] == 20.0);
  Tensor r = t.reshape(Shape{2, 3, 4});
  CHECK(r.rows() == 6);
  CHECK(r.same_storage(t));
  CHECK(t.slice_rows(6, 6).numel() == 0);
  CHECK_THROWS_WITH_AS(t.slice_rows(4, 7), doctest::Contains("range [4, 7)"), Error);
  CHECK_THROWS_WITH_AS(t.reshape(Shape{5, 5}), doctest::Contains("cannot view"), Error);
}

NSAMP_DEVICE_TEST("tensor: mismatches are reported with the op and the tensors") {
  Context ctx(dev);
  Tensor a = Tensor::empty(Shape{3, 2}, DType::F32, ctx);
  Tensor b = Tensor::empty(Shape{3, 2}, DType::F64, ctx);
  Tensor c = Tensor::empty(Shape{4, 2}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS((void)a.data<double>(), doctest::Contains("requested float64 from a float32[3, 2]"),
                       Error);
  CHECK_THROWS_WITH_AS(copy(a, b, ctx), doctest::Contains("dtype mismatch"), Error);
  CHECK_THROWS_WITH_AS(copy(a, c, ctx), doctest::Contains("element counts differ"), Error);
  Tensor undefined;
  CHECK_FALSE(undefined.defined());
  CHECK_THROWS_WITH_AS(copy(undefined, a, ctx), doctest::Contains("undefined tensor"), Error);
  CHECK(a.desc() == "float32[3, 2]@" + dev.str());
}

NSAMP_DEVICE_TEST("tensor: partly overlapping copies are rejected and exact aliasing is a no-op") {
  Context ctx(dev);
  Tensor t = test::from_doubles({0, 1, 2, 3, 4, 5, 6, 7}, Shape{8, 1}, DType::F64, dev, ctx);
  Tensor a = t.slice_rows(0, 4), b = t.slice_rows(2, 6), c = t.slice_rows(4, 8);
  CHECK_THROWS_WITH_AS(copy(a, b, ctx), doctest::Contains("overlaps src"), Error);
  copy(a, c, ctx);  // disjoint views of one buffer
  copy(a, a, ctx);  // exact alias
  test::check_close(t.to_vector<double>(ctx), {0, 1, 2, 3, 0, 1, 2, 3}, 0, 0, "disjoint copy");
}

NSAMP_DEVICE_TEST("tensor: a device tensor is only used with the context that owns it") {
  Context c1(dev), c2(dev);
  Tensor a = Tensor::zeros(Shape{4}, DType::F32, c1);
  if (dev.is_cuda()) {
    CHECK_THROWS_WITH_AS(zero(a, c2), doctest::Contains("belongs to another context"), Error);
    Tensor b = a.to(Device::cpu(), c1).to(dev, c2);  // the supported way across: copy through the host
    zero(b, c2);
  } else {
    zero(a, c2);  // host memory is not stream-ordered: any context may use it
  }
}

NSAMP_DEVICE_TEST("tensor: two contexts on one device are independent") {
  Context c1(dev, 1), c2(dev, 1);
  Tensor a = Tensor::empty(Shape{1000}, DType::F32, c1);
  Tensor b = Tensor::empty(Shape{1000}, DType::F32, c2);
  fill_normal(a, c1);
  fill_normal(b, c2);
  test::check_close(test::to_doubles(a, c1), test::to_doubles(b, c2), 0, 0,
                    "same seed, same stream of numbers");
  CHECK(c1.allocator().stats().bytes_in_use > 0);
  CHECK(&c1.allocator() != &c2.allocator());
}
