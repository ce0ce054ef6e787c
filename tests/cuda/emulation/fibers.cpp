#include "tests/cuda/emulation/fibers.h"

#include <cstdint>

#if defined(__x86_64__)

// pagodaSwitchFiber(void** saveStackPointer, void* loadStackPointer): pushes
// the callee-saved registers of the System V ABI, swaps stacks, pops the
// other fiber's and returns into it. (The MXCSR and x87 control words are
// callee-saved too, but nothing here changes them.)
asm(R"(
    .pushsection .text
    .globl pagodaSwitchFiber
    .hidden pagodaSwitchFiber
    .type pagodaSwitchFiber, @function
pagodaSwitchFiber:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size pagodaSwitchFiber, .-pagodaSwitchFiber
    .popsection
)");

extern "C" void pagodaSwitchFiber(void** saveStackPointer, void* loadStackPointer);

namespace pagoda::cuda::emulation {

void prepareFiber(FiberContext& fiber, std::span<std::byte> stack, void (*entry)()) {
    // What pagodaSwitchFiber pops: six registers, then the address its `ret`
    // jumps to. entry then finds the stack as a call leaves it (16-byte
    // aligned plus a return address, which it never uses).
    const uintptr_t top = reinterpret_cast<uintptr_t>(stack.data() + stack.size()) & ~uintptr_t(15);
    auto* slot = reinterpret_cast<uintptr_t*>(top);
    *--slot = 0;
    *--slot = reinterpret_cast<uintptr_t>(entry);
    for (int reg = 0; reg < 6; ++reg) *--slot = 0;
    fiber.stackPointer = slot;
}

void switchFiber(FiberContext& from, FiberContext& to) { pagodaSwitchFiber(&from.stackPointer, to.stackPointer); }

}  // namespace pagoda::cuda::emulation

#else

namespace pagoda::cuda::emulation {

void prepareFiber(FiberContext& fiber, std::span<std::byte> stack, void (*entry)()) {
    getcontext(&fiber.context);
    fiber.context.uc_stack.ss_sp = stack.data();
    fiber.context.uc_stack.ss_size = stack.size();
    fiber.context.uc_link = nullptr;
    makecontext(&fiber.context, entry, 0);
}

void switchFiber(FiberContext& from, FiberContext& to) { swapcontext(&from.context, &to.context); }

}  // namespace pagoda::cuda::emulation

#endif
