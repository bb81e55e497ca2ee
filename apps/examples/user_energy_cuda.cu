// Example: the same user functor compiled by nvcc, so FunctorTarget also runs it on CUDA tensors (one thread
// per sample). Compares the GPU energies and gradients with the CPU path; exits 77 (skipped) where no GPU is
// visible.
#include <cmath>
#include <cstdio>

#include "nsamp/core/device.h"
#include "nsamp/core/fill.h"
#include "nsamp/targets/user_target.h"
#include "user_energy.h"

int main() {
  using namespace nsamp;
  if (cuda_device_count() == 0) {
    std::printf("no CUDA device visible: skipped\n");
    return 77;
  }
  Context gpu(Device::cuda(0), 1), cpu(Device::cpu(), 1);
  targets::FunctorTarget<BananaEnergy> t("banana", 2, BananaEnergy{});
  Tensor xh = Tensor::empty(Shape{100000, 2}, DType::F32, cpu);
  fill_normal(xh, cpu, 0.0, 2.0);
  Tensor x = xh.to(gpu.device(), gpu);
  Tensor e = Tensor::empty(Shape{100000}, DType::F32, gpu),
         g = Tensor::empty(Shape{100000, 2}, DType::F32, gpu);
  t.energy_and_grad(x, e, g, gpu);
  Tensor eh = Tensor::empty(Shape{100000}, DType::F32, cpu),
         gh = Tensor::empty(Shape{100000, 2}, DType::F32, cpu);
  t.energy_and_grad(xh, eh, gh, cpu);
  const std::vector<float> e_gpu = e.to_vector<float>(gpu), e_cpu = eh.to_vector<float>(cpu);
  const std::vector<float> g_gpu = g.to_vector<float>(gpu), g_cpu = gh.to_vector<float>(cpu);
  double worst = 0;
  for (std::size_t i = 0; i < e_gpu.size(); ++i)
    worst = std::fmax(worst, std::fabs(e_gpu[i] - e_cpu[i]) / std::fmax(1.0, std::fabs(e_cpu[i])));
  for (std::size_t i = 0; i < g_gpu.size(); ++i)
    worst = std::fmax(worst, std::fabs(g_gpu[i] - g_cpu[i]) / std::fmax(1.0, std::fabs(g_cpu[i])));
  std::printf("user energy on CUDA: energies and gradients, max relative difference to the CPU path %.3g\n",
              worst);
  return worst < 1e-5 ? 0 : 1;
}
