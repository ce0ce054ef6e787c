#include "app/common/backend_args.h"

namespace pagoda {

Result<BackendOptions> parseBackendOptions(Args& args) {
    BackendOptions options;
    PAGODA_ASSIGN_OR_RETURN(options.cpu.threads, args.integer("threads", 0, 0, 1024));
    PAGODA_ASSIGN_OR_RETURN(options.choice, parseBackendChoice(args.value("backend").value_or("auto")));
    PAGODA_ASSIGN_OR_RETURN(const int64_t device, args.integer("device", kFirstUsableCudaDevice, 0, 1023));
    options.cudaDevice = int(device);
    PAGODA_ASSIGN_OR_RETURN(options.gpuLayers, parseGpuLayers(args.value("gpu-layers").value_or("auto")));
    return options;
}

}  // namespace pagoda
