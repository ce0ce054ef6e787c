#include "ui/engine_types.h"

namespace pagoda::ui {

void registerEngineTypes() {
    qRegisterMetaType<ModelInfo>();
    qRegisterMetaType<GenerationRequest>();
    qRegisterMetaType<StatsUpdate>();
    qRegisterMetaType<runtime::FinishEvent>();
    qRegisterMetaType<runtime::OptimizationConfig>();
    qRegisterMetaType<CudaDeviceList>();
}

}  // namespace pagoda::ui
