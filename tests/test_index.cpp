// Index family: column blocks, row gathers and scatter-adds against float64 loops (exact where the arithmetic
// is exact), repeated and empty indices, the CPU path's serial summation order, and clear argument errors.
#include <algorithm>

#include "nsamp/kernels/index.h"
#include "test_util.h"

using namespace nsamp;
using namespace nsamp::kernels;

namespace {

// m indices drawn from [0, n) with a fixed linear congruential sequence (repeats are frequent when m > n).
std::vector<std::int32_t> random_indices(std::int64_t m, std::int64_t n, std::uint64_t seed) {
  std::vector<std::int32_t> v(static_cast<std::size_t>(m));
  std::uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& e : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    e = static_cast<std::int32_t>((s >> 33) % static_cast<std::uint64_t>(n));
  }
  return v;
}

}  // namespace

NSAMP_DEVICE_TEST("copy_cols: concat and split along features - exact - other columns untouched") {
  Context ctx(dev);
  struct Case {
    Shape src, dst;
    std::int64_t src_col0, dst_col0, ncols;
    const char* what;
  };
  const Case cases[] = {{Shape{7, 5}, Shape{7, 8}, 1, 4, 3, "into a wider tensor (concat)"},
                        {Shape{7, 8}, Shape{7, 3}, 5, 0, 3, "out of a wider tensor (split)"},
                        {Shape{7, 4}, Shape{7, 4}, 0, 0, 4, "whole rows (contiguous)"},
                        {Shape{1, 6}, Shape{1, 9}, 0, 9 - 6, 6, "single row"},
                        {Shape{0, 5}, Shape{0, 8}, 1, 2, 4, "empty batch"},
                        {Shape{7, 5}, Shape{7, 8}, 2, 2, 0, "no columns"},
                        {Shape{2, 3, 4}, Shape{6, 2}, 3, 1, 1, "rank 3 source (2-D view)"},
                        {Shape{7000, 5}, Shape{7000, 9}, 0, 4, 5, "parallel size"}};
  std::uint64_t seed = 100;
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Case& c : cases) {
      const std::string what = std::string("copy_cols ") + c.what + " " + dtype_name(dt);
      const Tensor s_host = test::randn(c.src, dt, Device::cpu(), ctx, ++seed);
      const Tensor d_host = test::randn(c.dst, dt, Device::cpu(), ctx, ++seed);
      const std::vector<double> sv = test::to_doubles(s_host, ctx);
      std::vector<double> ref = test::to_doubles(d_host, ctx);
      const std::int64_t R = c.dst.rows(), SC = c.src.cols(), DC = c.dst.cols();
      for (std::int64_t r = 0; r < R; ++r)
        for (std::int64_t k = 0; k < c.ncols; ++k) ref[r * DC + c.dst_col0 + k] = sv[r * SC + c.src_col0 + k];
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor s = s_host.to(d, ctx), out = d_host.to(d, ctx);
            copy_cols(s, c.src_col0, out, c.dst_col0, c.ncols, ctx);
            return test::to_doubles(out, ctx);
          },
          ref, 0, 0, what);
    }
  }
  // Within one tensor, between disjoint column blocks.
  const Tensor t_host = test::randn(Shape{9, 6}, DType::F32, Device::cpu(), ctx, 7);
  std::vector<double> ref = test::to_doubles(t_host, ctx);
  for (std::int64_t r = 0; r < 9; ++r)
    for (std::int64_t k = 0; k < 2; ++k) ref[r * 6 + 4 + k] = ref[r * 6 + 1 + k];
  test::check_backend(
      dev,
      [&](Device d) {
        Tensor t = t_host.to(d, ctx);
        copy_cols(t, 1, t, 4, 2, ctx);
        return test::to_doubles(t, ctx);
      },
      ref, 0, 0, "copy_cols within one tensor");
}

NSAMP_DEVICE_TEST("copy_cols: bad arguments name the op and the tensors") {
  Context ctx(dev);
  const std::string at = "@" + dev.str();
  Tensor src = Tensor::zeros(Shape{3, 5}, DType::F32, ctx);
  Tensor dst = Tensor::zeros(Shape{4, 8}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(copy_cols(src, 0, dst, 0, 2, ctx),
                       doctest::Contains(("copy_cols: src float32[3, 5]" + at + " and dst float32[4, 8]" +
                                          at + " must have the same number of rows")
                                             .c_str()),
                       Error);
  Tensor dst3 = Tensor::zeros(Shape{3, 8}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(
      copy_cols(src, 3, dst3, 0, 4, ctx),
      doctest::Contains(("copy_cols: columns [3, 7) are outside src float32[3, 5]" + at).c_str()), Error);
  CHECK_THROWS_WITH_AS(
      copy_cols(src, 0, dst3, 6, 4, ctx),
      doctest::Contains(("copy_cols: columns [6, 10) are outside dst float32[3, 8]" + at).c_str()), Error);
  CHECK_THROWS_WITH_AS(copy_cols(src, -1, dst3, 0, 2, ctx), doctest::Contains("copy_cols: columns [-1, 1)"),
                       Error);
  CHECK_THROWS_WITH_AS(copy_cols(src, 0, dst3, 0, -2, ctx), doctest::Contains("copy_cols: columns [0, -2)"),
                       Error);
  CHECK_THROWS_WITH_AS(copy_cols(src, 0, src, 2, 3, ctx),
                       doctest::Contains("copy_cols: src and dst are the same tensor"), Error);
  copy_cols(src, 1, src, 1, 3, ctx);  // the same block onto itself: a no-op
  Tensor d64 = Tensor::zeros(Shape{3, 8}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(copy_cols(src, 0, d64, 0, 2, ctx), doctest::Contains("copy_cols: dtype mismatch"),
                       Error);
  Tensor ints = Tensor::from_vector(std::vector<std::int32_t>(24, 0), Shape{3, 8}, dev, ctx);
  CHECK_THROWS_WITH_AS(copy_cols(src, 0, ints, 0, 2, ctx),
                       doctest::Contains("copy_cols: dst must be float32 or float64"), Error);
  if (dev.is_cuda()) {
    Tensor h = Tensor::zeros(Shape{3, 8}, DType::F32, Device::cpu(), ctx);
    CHECK_THROWS_WITH_AS(copy_cols(src, 0, h, 0, 2, ctx), doctest::Contains("copy_cols: device mismatch"),
                         Error);
  }
}

NSAMP_DEVICE_TEST("gather_rows: against a float64 loop - repeated and empty indices") {
  Context ctx(dev);
  struct Case {
    std::int64_t N, M, C;
    const char* what;
  };
  const Case cases[] = {{13, 20, 6, "repeated indices"},
                        {13, 1, 6, "single row"},
                        {13, 0, 6, "empty batch"},
                        {1, 9, 4, "one source row"},
                        {500, 6000, 8, "parallel size"}};
  std::uint64_t seed = 200;
  for (DType dt : {DType::F32, DType::F64}) {
    for (const Case& c : cases) {
      const std::string what = std::string("gather_rows ") + c.what + " " + dtype_name(dt);
      const Tensor x_host = test::randn(Shape{c.N, c.C}, dt, Device::cpu(), ctx, ++seed);
      std::vector<std::int32_t> idx = random_indices(c.M, c.N, seed);
      if (c.M >= 2) {  // both ends of the range
        idx[0] = 0;
        idx[1] = static_cast<std::int32_t>(c.N - 1);
      }
      const std::vector<double> xv = test::to_doubles(x_host, ctx);
      std::vector<double> ref(static_cast<std::size_t>(c.M * c.C));
      for (std::int64_t i = 0; i < c.M; ++i)
        for (std::int64_t k = 0; k < c.C; ++k) ref[i * c.C + k] = xv[idx[i] * c.C + k];
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor x = x_host.to(d, ctx), ix = test::index_tensor(idx, d, ctx);
            Tensor out = Tensor::empty(Shape{c.M, c.C}, dt, d, ctx);
            gather_rows(x, ix, out, ctx);
            return test::to_doubles(out, ctx);
          },
          ref, 0, 0, what);
    }
  }
}

NSAMP_DEVICE_TEST("gather_rows: bad arguments name the op and the tensors") {
  Context ctx(dev);
  const std::string at = "@" + dev.str();
  Tensor x = Tensor::zeros(Shape{5, 3}, DType::F32, ctx);
  Tensor out = Tensor::zeros(Shape{4, 3}, DType::F32, ctx);
  Tensor fidx = Tensor::zeros(Shape{4}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(gather_rows(x, fidx, out, ctx),
                       doctest::Contains(("gather_rows: idx must be int32, got float32[4]" + at).c_str()),
                       Error);
  Tensor idx5 = test::index_tensor({0, 1, 2, 3, 4}, dev, ctx);
  CHECK_THROWS_WITH_AS(gather_rows(x, idx5, out, ctx),
                       doctest::Contains(("gather_rows: idx int32[5]" + at + " must have shape [4]").c_str()),
                       Error);
  Tensor idx4 = test::index_tensor({0, 1, 2, 3}, dev, ctx);
  Tensor wide = Tensor::zeros(Shape{4, 2}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(
      gather_rows(x, idx4, wide, ctx),
      doctest::Contains(
          ("gather_rows: out float32[4, 2]" + at + " must have the columns of x float32[5, 3]" + at).c_str()),
      Error);
  Tensor buf = Tensor::zeros(Shape{9, 3}, DType::F32, ctx);
  Tensor lo = buf.slice_rows(0, 5), hi = buf.slice_rows(5, 9);
  CHECK_THROWS_WITH_AS(gather_rows(lo, idx4, hi, ctx), doctest::Contains("gather_rows: out float32[4, 3]"),
                       Error);
  if (dev.is_cpu()) {  // the host path bounds-checks; on a GPU check_indices is the validation
    Tensor bad = test::index_tensor({0, 1, 5, 2}, dev, ctx);
    CHECK_THROWS_WITH_AS(gather_rows(x, bad, out, ctx),
                         doctest::Contains("gather_rows: idx[2] = 5 is out of range [0, 5)"), Error);
  } else {
    Tensor host_idx = test::index_tensor({0, 1, 2, 3}, Device::cpu(), ctx);
    CHECK_THROWS_WITH_AS(gather_rows(x, host_idx, out, ctx),
                         doctest::Contains("gather_rows: device mismatch"), Error);
  }
}

NSAMP_DEVICE_TEST("index_add_rows: repeated indices accumulate - against float64") {
  Context ctx(dev);
  struct Case {
    std::int64_t N, M, C;
    const char* what;
  };
  const Case cases[] = {{7, 40, 5, "repeated indices"},
                        {7, 1, 5, "single row"},
                        {7, 0, 5, "empty batch"},
                        {1, 30, 3, "all into one row"},
                        {50, 20000, 3, "parallel size"},
                        {40000, 9000, 4, "more rows than sources"},
                        {300, 300, 200, "parallel, wide rows"}};
  std::uint64_t seed = 300;
  for (DType dt : {DType::F32, DType::F64}) {
    const double u = dt == DType::F32 ? 6e-8 : 1.2e-16;  // unit roundoff
    for (const Case& c : cases) {
      const std::string what = std::string("index_add_rows ") + c.what + " " + dtype_name(dt);
      const Tensor s_host = test::randn(Shape{c.M, c.C}, dt, Device::cpu(), ctx, ++seed);
      const Tensor o_host = test::randn(Shape{c.N, c.C}, dt, Device::cpu(), ctx, ++seed);
      const std::vector<std::int32_t> idx = random_indices(c.M, c.N, seed);
      const std::vector<double> sv = test::to_doubles(s_host, ctx);
      std::vector<double> ref = test::to_doubles(o_host, ctx), scale(ref.size()), count(ref.size(), 1);
      for (std::size_t j = 0; j < ref.size(); ++j) scale[j] = std::abs(ref[j]);
      for (std::int64_t i = 0; i < c.M; ++i)
        for (std::int64_t k = 0; k < c.C; ++k) {
          const std::size_t j = static_cast<std::size_t>(idx[i] * c.C + k);
          ref[j] += sv[i * c.C + k];
          scale[j] += std::abs(sv[i * c.C + k]);
          count[j] += 1;
        }
      // Any summation order (GPU atomics) is within (terms) * u * sum |terms| of the exact sum; report the
      // error in those units.
      auto normalised = [&](const std::vector<double>& got) {
        std::vector<double> e(got.size());
        for (std::size_t j = 0; j < got.size(); ++j)
          e[j] = (got[j] - ref[j]) / (count[j] * u * scale[j] + 1e-300);
        return e;
      };
      test::check_backend(
          dev,
          [&](Device d) {
            Tensor s = s_host.to(d, ctx), ix = test::index_tensor(idx, d, ctx), out = o_host.to(d, ctx);
            index_add_rows(s, ix, out, ctx);
            return normalised(test::to_doubles(out, ctx));
          },
          std::vector<double>(ref.size(), 0.0), 0, 1.0, what);
      if (dev.is_cpu()) {
        // The host path keeps the serial order whatever the thread count: bit for bit the plain loop in dt.
        Tensor s = s_host.to(dev, ctx), ix = test::index_tensor(idx, dev, ctx), out = o_host.to(dev, ctx);
        index_add_rows(s, ix, out, ctx);
        std::vector<double> serial;
        if (dt == DType::F32) {
          std::vector<float> o = o_host.to_vector<float>(ctx), sf = s_host.to_vector<float>(ctx);
          for (std::int64_t i = 0; i < c.M; ++i)
            for (std::int64_t k = 0; k < c.C; ++k) o[idx[i] * c.C + k] += sf[i * c.C + k];
          serial.assign(o.begin(), o.end());
        } else {
          serial = o_host.to_vector<double>(ctx);
          for (std::int64_t i = 0; i < c.M; ++i)
            for (std::int64_t k = 0; k < c.C; ++k) serial[idx[i] * c.C + k] += sv[i * c.C + k];
        }
        test::check_close(test::to_doubles(out, ctx), serial, 0, 0, what + ": serial order");
      }
    }
  }
  // Small integers add exactly in any order: the GPU's atomics must then agree exactly too.
  for (DType dt : {DType::F32, DType::F64}) {
    const std::int64_t M = 5000, C = 3, N = 4;
    std::vector<double> sv(static_cast<std::size_t>(M * C));
    for (std::size_t i = 0; i < sv.size(); ++i) sv[i] = static_cast<double>(static_cast<int>(i % 7) - 3);
    std::vector<std::int32_t> idx(static_cast<std::size_t>(M), 2);
    idx[0] = 0;
    std::vector<double> ref(static_cast<std::size_t>(N * C), 0.0);
    for (std::int64_t i = 0; i < M; ++i)
      for (std::int64_t k = 0; k < C; ++k) ref[idx[i] * C + k] += sv[i * C + k];
    test::check_backend(
        dev,
        [&](Device d) {
          Tensor s = test::from_doubles(sv, Shape{M, C}, dt, d, ctx), ix = test::index_tensor(idx, d, ctx);
          Tensor out = Tensor::zeros(Shape{N, C}, dt, d, ctx);
          index_add_rows(s, ix, out, ctx);
          return test::to_doubles(out, ctx);
        },
        ref, 0, 0, std::string("index_add_rows exact integer sums ") + dtype_name(dt));
  }
}

NSAMP_DEVICE_TEST("index_add_rows: bad arguments name the op and the tensors") {
  Context ctx(dev);
  const std::string at = "@" + dev.str();
  Tensor src = Tensor::zeros(Shape{4, 3}, DType::F32, ctx);
  Tensor out = Tensor::zeros(Shape{7, 3}, DType::F32, ctx);
  Tensor idx5 = test::index_tensor({0, 1, 2, 3, 4}, dev, ctx);
  CHECK_THROWS_WITH_AS(
      index_add_rows(src, idx5, out, ctx),
      doctest::Contains(("index_add_rows: idx int32[5]" + at + " must have shape [4]").c_str()), Error);
  Tensor idx4 = test::index_tensor({0, 6, 6, 3}, dev, ctx);
  Tensor narrow = Tensor::zeros(Shape{7, 2}, DType::F32, ctx);
  CHECK_THROWS_WITH_AS(index_add_rows(src, idx4, narrow, ctx),
                       doctest::Contains(("index_add_rows: out float32[7, 2]" + at +
                                          " must have the columns of src float32[4, 3]" + at)
                                             .c_str()),
                       Error);
  Tensor o64 = Tensor::zeros(Shape{7, 3}, DType::F64, ctx);
  CHECK_THROWS_WITH_AS(index_add_rows(src, idx4, o64, ctx),
                       doctest::Contains("index_add_rows: dtype mismatch"), Error);
  Tensor buf = Tensor::zeros(Shape{11, 3}, DType::F32, ctx);
  Tensor lo = buf.slice_rows(0, 4), hi = buf.slice_rows(4, 11);
  CHECK_THROWS_WITH_AS(index_add_rows(lo, idx4, hi, ctx), doctest::Contains("must not share memory with src"),
                       Error);
  Tensor idx2d = Tensor::from_vector(std::vector<std::int32_t>{0, 1, 2, 3}, Shape{4, 1}, dev, ctx);
  CHECK_THROWS_WITH_AS(index_add_rows(src, idx2d, out, ctx), doctest::Contains("must have shape [4]"), Error);
  if (dev.is_cpu()) {
    Tensor bad = test::index_tensor({0, 1, -1, 2}, dev, ctx);
    CHECK_THROWS_WITH_AS(index_add_rows(src, bad, out, ctx),
                         doctest::Contains("index_add_rows: idx[2] = -1 is out of range [0, 7)"), Error);
  }
}

NSAMP_DEVICE_TEST("check_indices: accepts valid indices and names the first bad one") {
  Context ctx(dev);
  const std::string at = "@" + dev.str();
  check_indices("build_pairs", test::index_tensor({0, 4, 4, 1}, dev, ctx), 5, ctx);
  check_indices("build_pairs", test::index_tensor({}, dev, ctx), 0, ctx);  // empty: nothing to check
  Tensor big = test::index_tensor(random_indices(100000, 1000, 3), dev, ctx);
  check_indices("build_pairs", big, 1000, ctx);
  CHECK_THROWS_WITH_AS(check_indices("build_pairs", big, 999, ctx),
                       doctest::Contains("is out of range [0, 999)"), Error);
  CHECK_THROWS_WITH_AS(
      check_indices("build_pairs", test::index_tensor({0, -2, 7}, dev, ctx), 5, ctx),
      doctest::Contains(("build_pairs: idx[1] = -2 is out of range [0, 5) (idx int32[3]" + at).c_str()),
      Error);
  CHECK_THROWS_WITH_AS(check_indices("build_pairs", test::index_tensor({0, 1, 5}, dev, ctx), 5, ctx),
                       doctest::Contains("build_pairs: idx[2] = 5 is out of range [0, 5)"), Error);
  CHECK_THROWS_WITH_AS(check_indices("build_pairs", test::index_tensor({0}, dev, ctx), 0, ctx),
                       doctest::Contains("build_pairs: idx[0] = 0 is out of range [0, 0)"), Error);
  CHECK_THROWS_WITH_AS(check_indices("build_pairs", test::index_tensor({0}, dev, ctx), -1, ctx),
                       doctest::Contains("build_pairs: negative row count -1"), Error);
  CHECK_THROWS_WITH_AS(check_indices("build_pairs", Tensor::zeros(Shape{3}, DType::F32, ctx), 5, ctx),
                       doctest::Contains(("build_pairs: idx must be int32, got float32[3]" + at).c_str()),
                       Error);
  CHECK_THROWS_WITH_AS(check_indices("build_pairs", Tensor(), 5, ctx),
                       doctest::Contains("build_pairs: argument 'idx' is an undefined tensor"), Error);
}
