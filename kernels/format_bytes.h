#pragma once
// Byte counts for messages, in binary units: "512 B", "1.50 KiB", "13.00 GiB".

#include <cstdint>
#include <string>

namespace pagoda {

std::string formatBytes(uint64_t bytes);

}  // namespace pagoda
