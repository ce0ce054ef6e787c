#pragma once
// A host emulator for a CUDA kernel compiled as C++ (cuda_shim.h and the
// shadow headers route its built-ins here). The CTAs of a grid run one
// after another; each thread of a CTA is a fiber, switched cooperatively at
// __syncthreads and at the warp collectives ldmatrix.x4, mma.m16n8k16 and
// __shfl_xor_sync, which exchange the lanes' operands as the PTX ISA
// defines them. A cp.async lands when its thread waits for it, and every
// 16-byte chunk of shared memory records who copied into it and who read it
// in which barrier interval, so that a read the hardware would not order
// after the copy, or a copy over data another warp may still read, is
// reported as a hazard even where this schedule happens to give the right
// answer. Every CTA runs on a thread of its own, which starts with the
// kernel's static __shared__ arrays (thread_locals, cuda_shim.h) full of
// 0xff bytes, like its dynamic shared array: a CTA never sees what the
// one before it left there.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <source_location>
#include <span>
#include <string>
#include <vector>

namespace pagoda::cuda::emulation {

struct Index3 {
    unsigned x = 0;
    unsigned y = 0;
    unsigned z = 0;
};

// Global memory that cp.async may read.
struct GlobalRange {
    const void* data = nullptr;
    size_t bytes = 0;
    std::string name;
};

struct LaunchConfig {
    unsigned gridX = 1;
    unsigned gridY = 1;
    unsigned gridZ = 1;
    int threads = 32;  // per CTA, one-dimensional, a multiple of 32
    // The kernel's dynamic shared array (16-byte aligned) and the bytes the
    // launch asks for, at most its size. Filled with 0xff bytes (NaN as f16
    // and as f32) before every CTA.
    std::span<std::byte> shared;
    size_t sharedBytes = 0;
    std::function<std::string(size_t byteOffset)> describeShared;  // names a shared location in messages
    std::vector<GlobalRange> copySources;
    // Called on the caller's thread, around each CTA.
    std::function<void(Index3 block)> beforeCta;
    std::function<void(Index3 block)> afterCta;
    bool shuffleThreads = false;  // a random thread order in every scheduling round
    uint64_t seed = 0;            // of that order
};

struct Findings {
    // Shared-memory races around cp.async.
    long hazardCount = 0;
    std::vector<std::string> hazards;  // the first few
    // Bad addresses, divergent collectives or barriers, copies never waited
    // for, deadlock.
    long errorCount = 0;
    std::vector<std::string> errors;  // the first few
};

// Runs body() on every thread of every CTA of the grid. A deadlock ends
// the launch (an error).
Findings launch(const LaunchConfig& config, const std::function<void()>& body);

// Whether a CTA's thread finds the zero-initialised thread_locals of the
// executable (the emulated kernels' static __shared__ arrays) full of 0xff
// bytes. Needs glibc 2.35 (dl_iterate_phdr's dlpi_tls_data); without it
// they start as zeros.
bool poisonsStaticShared();

// The CUDA built-ins, for cuda_shim.h and the shadow headers; valid only
// inside body() of a launch. `caller` is the kernel's source line.
const Index3& threadIndex();
const Index3& blockIndex();
const Index3& blockSize();
const Index3& gridSize();
void syncThreads(std::source_location caller);
uint64_t shuffleXor(uint64_t bits, unsigned mask, int laneMask, std::source_location caller);
void ldmatrixX4(uint32_t (&r)[4], const void* row, bool transpose, std::source_location caller);
void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, std::source_location caller);
void copyAsync16(void* dst, const void* src, bool valid, std::source_location caller);
void copyAsyncCommit();
void copyAsyncWaitAll(std::source_location caller);
// A vector load or store of `bytes` at p, which the device needs aligned to
// `bytes` (the host would not fault): an error finding when it is not.
void expectAligned(const void* p, size_t bytes, std::source_location caller);

}  // namespace pagoda::cuda::emulation
