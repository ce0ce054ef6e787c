#include "engine/runtime/request.h"

namespace pagoda::runtime {

std::string_view finishReasonName(FinishReason reason) {
    switch (reason) {
    case FinishReason::StopString:
        return "stop";
    case FinishReason::EndOfGeneration:
        return "eos";
    case FinishReason::Length:
        return "length";
    case FinishReason::Cancelled:
        return "cancelled";
    case FinishReason::ContextOverflow:
        return "context_overflow";
    case FinishReason::Error:
        return "error";
    }
    return "unknown";
}

}  // namespace pagoda::runtime
