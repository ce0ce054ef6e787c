#include "engine/runtime/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>

namespace pagoda::runtime {

void RollingRate::add(Clock::time_point end, double seconds, int generatedTokens, int promptTokens) {
    m_samples.push_back({end, seconds, generatedTokens, promptTokens});
    while (m_samples.size() > 1 && end - m_samples.front().end > kWindow) m_samples.pop_front();
}

std::pair<double, double> RollingRate::rates(Clock::time_point now) const {
    double generated = 0, prompt = 0;
    Clock::time_point first = now;
    for (const Sample& s : m_samples) {
        if (now - s.end > kWindow) continue;
        generated += s.generated;
        prompt += s.prompt;
        first = std::min(first, s.end - std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(s.seconds)));
    }
    const double span = std::chrono::duration<double>(now - first).count();
    if (span <= 0) return {0, 0};
    return {generated / span, prompt / span};
}

uint64_t hostRssBytes() {
    std::ifstream statm("/proc/self/statm");
    uint64_t sizePages = 0, residentPages = 0;
    if (!(statm >> sizePages >> residentPages)) return 0;
    return residentPages * uint64_t(sysconf(_SC_PAGESIZE));
}

}  // namespace pagoda::runtime
