#pragma once
// Shared by the kernel tests: a scalar float64 decoder of every weight type
// the kernels support, written from the GGUF format description (ggml's
// block layouts), independent of kernels/ and kernels/half.h.

#include <cstdint>
#include <vector>

#include "kernels/dtype.h"

namespace pagoda::test {

// One element as the format defines it: value = scale * q + offset for the
// integer q the block stores (float types: scale 0, offset = the value).
struct RefElement {
    double value = 0.0;      // exact
    double magnitude = 0.0;  // |scale * q| + |offset|: what a kernel that adds the
                             // two terms separately can lose precision against
    double step = 0.0;       // |scale|: the distance between adjacent levels
    double lo = 0.0;         // the smallest and largest values the element's
    double hi = 0.0;         // (sub-)block can represent with its scale and offset
};

// Decodes n elements (a multiple of the block size) of `type` from bytes.
std::vector<RefElement> refDecode(DType type, const uint8_t* bytes, int64_t n);

}  // namespace pagoda::test
