#pragma once
// Cooperative fibers for the CTA emulator: each emulated GPU thread runs on
// a stack of its own and hands control back explicitly. On x86-64 a few
// instructions switch stacks; elsewhere ucontext does, which also saves and
// restores the signal mask, a system call per switch and several times
// slower.

#include <cstddef>
#include <span>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

namespace pagoda::cuda::emulation {

// Where a suspended fiber (or the scheduler) resumes.
struct FiberContext {
#if defined(__x86_64__)
    void* stackPointer = nullptr;
#else
    ucontext_t context{};
#endif
};

// Makes the first switch to `fiber` call entry() on `stack`. entry must
// never return: it ends by switching away for good.
void prepareFiber(FiberContext& fiber, std::span<std::byte> stack, void (*entry)());

// Suspends the running code into `from` and resumes `to`.
void switchFiber(FiberContext& from, FiberContext& to);

}  // namespace pagoda::cuda::emulation
