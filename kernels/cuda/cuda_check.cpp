#include "kernels/cuda/cuda_check.h"

#include <cstring>
#include <string>

namespace pagoda::cuda {
namespace {

std::string where(const char* file, int line) {
    return std::string(" [") + projectRelativePath(file) + ":" + std::to_string(line) + "]";
}

}  // namespace

const char* projectRelativePath(const char* file) {
    for (const char* root : {"/kernels/", "/engine/", "/tests/", "/app/"}) {
        if (const char* at = std::strstr(file, root)) return at + 1;
    }
    return file;
}

Status checkCall(cudaError_t result, const char* statement, const char* file, int line) {
    if (result == cudaSuccess) return {};
    return Status::error(std::string(statement) + " failed: " + cudaGetErrorName(result) + " (" +
                         std::to_string(int(result)) + "): " + cudaGetErrorString(result) + where(file, line));
}

Status checkCall(cublasStatus_t result, const char* statement, const char* file, int line) {
    if (result == CUBLAS_STATUS_SUCCESS) return {};
    return Status::error(std::string(statement) + " failed: " + cublasGetStatusName(result) + " (" +
                         std::to_string(int(result)) + "): " + cublasGetStatusString(result) + where(file, line));
}

}  // namespace pagoda::cuda
