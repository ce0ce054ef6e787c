#include "kernels/cuda/weight_upload.h"

#include "kernels/cuda/memory_pool.h"

namespace pagoda::cuda {

WeightUploadPlan planWeightUpload(const std::vector<uint64_t>& tensorBytes) {
    WeightUploadPlan plan;
    plan.offsets.reserve(tensorBytes.size());
    for (uint64_t bytes : tensorBytes) {
        plan.offsets.push_back(plan.totalBytes);
        plan.totalBytes += (bytes + kWeightAlignment - 1) / kWeightAlignment * kWeightAlignment;
    }
    return plan;
}

std::string weightsDoNotFit(uint64_t totalBytes, uint64_t freeBytes, uint64_t deviceTotalBytes,
                            const std::string& deviceName) {
    if (totalBytes + kUploadHeadroomBytes <= freeBytes) return "";
    return "out of device memory: the model's weights need " + formatBytes(totalBytes) + " (plus " +
           formatBytes(kUploadHeadroomBytes) + " of workspace) and " + deviceName + " has " + formatBytes(freeBytes) +
           " free of " + formatBytes(deviceTotalBytes);
}

}  // namespace pagoda::cuda
