#pragma once
// Where each weight tensor goes in the one device allocation that holds a
// model, and whether that allocation fits: pure host code, tested without
// a device.

#include <cstdint>
#include <string>
#include <vector>

namespace pagoda::cuda {

constexpr uint64_t kWeightAlignment = 256;
// Kept free beside the weights for the context, workspaces and activations.
constexpr uint64_t kUploadHeadroomBytes = 256ull << 20;

struct WeightUploadPlan {
    std::vector<uint64_t> offsets;  // per tensor, kWeightAlignment-aligned
    uint64_t totalBytes = 0;
};

WeightUploadPlan planWeightUpload(const std::vector<uint64_t>& tensorBytes);

// "" when totalBytes plus the headroom fit in freeBytes, else the error
// naming the sizes and the device.
std::string weightsDoNotFit(uint64_t totalBytes, uint64_t freeBytes, uint64_t deviceTotalBytes,
                            const std::string& deviceName);

}  // namespace pagoda::cuda
