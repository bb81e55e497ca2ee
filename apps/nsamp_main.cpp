// nsamp: the command line. Today: `nsamp info` (also the default) prints the version, the devices this
// process sees and a smoke computation on the default device. Later issues add train, sample, eval, energy,
// bench.
#include <CLI/CLI.hpp>
#include <iostream>

#include "nsamp/core/config.h"
#include "nsamp/core/device.h"
#include "nsamp/core/error.h"
#include "smoke.h"

namespace {

int run_info(const std::string& device_flag) {
  using namespace nsamp;
  std::cout << "nsamp " << kVersion << " (CUDA backend " << (kCudaBuilt ? "built" : "not built") << ")\n";
  std::cout << "devices:\n  cpu\n";
  for (const CudaDeviceInfo& d : cuda_devices()) {
    std::cout << "  cuda:" << d.index << "  " << d.name << ", sm_" << d.cc_major << d.cc_minor << ", "
              << d.multiprocessors << " SMs, " << (d.total_memory >> 20) << " MiB\n";
  }
  if (kCudaBuilt && cuda_device_count() == 0) std::cout << "  (no CUDA device visible)\n";
  const Device dev = parse_device(device_flag);
  std::cout << "default device: " << default_device().str() << "; running on " << dev.str() << "\n";
  return apps::run_smoke(dev, std::cout).passed ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nsamp: neural samplers for Boltzmann densities (C++/CUDA)"};
  app.set_version_flag("--version", std::string("nsamp ") + nsamp::kVersion);
  app.require_subcommand(0, 1);
  std::string device = "auto";
  CLI::App* info =
      app.add_subcommand("info", "Version, visible devices and a smoke computation (the default)");
  info->add_option("--device", device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    return run_info(device);
  } catch (const nsamp::Error& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}
