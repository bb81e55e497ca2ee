// nsamp info: version, visible devices, and the smoke computation on a device.
#include <iostream>

#include "commands.h"
#include "nsamp/core/config.h"
#include "nsamp/core/cpu_arch.h"
#include "nsamp/core/device.h"
#include "smoke.h"

namespace nsamp::apps {

Action add_info(CLI::App& app) {
  auto device = std::make_shared<std::string>("auto");
  CLI::App* cmd =
      app.add_subcommand("info", "Version, visible devices and a smoke computation (the default)");
  cmd->add_option("--device", *device, "auto | cpu | cuda | cuda:N")->capture_default_str();
  return [device] {
    std::cout << "nsamp " << kVersion << " (CUDA backend " << (kCudaBuilt ? "built" : "not built") << ")\n";
    std::cout << "host instruction set: " << built_cpu_arch() << "\n";
    std::cout << "devices:\n  cpu\n";
    for (const CudaDeviceInfo& d : cuda_devices())
      std::cout << "  cuda:" << d.index << "  " << d.name << ", sm_" << d.cc_major << d.cc_minor << ", "
                << d.multiprocessors << " SMs, " << (d.total_memory >> 20) << " MiB\n";
    if (kCudaBuilt && cuda_device_count() == 0) std::cout << "  (no CUDA device visible)\n";
    const Device dev = parse_device(*device);
    std::cout << "default device: " << default_device().str() << "; running on " << dev.str() << "\n";
    return run_smoke(dev, std::cout).passed ? 0 : 1;
  };
}

}  // namespace nsamp::apps
