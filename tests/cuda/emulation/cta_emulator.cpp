#include "tests/cuda/emulation/cta_emulator.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <string_view>
#include <thread>
#include <utility>

#if defined(__GLIBC__)
#include <link.h>
#endif

#include "tests/cuda/emulation/fibers.h"
#include "tests/cuda/emulation/warp_instructions.h"

namespace pagoda::cuda::emulation {
namespace {

constexpr size_t kChunkBytes = 16;  // what one cp.async copies and one ldmatrix lane addresses
constexpr size_t kStackBytes = 256 * 1024;
constexpr size_t kMaxMessages = 8;

enum class Collective { SyncThreads, ShuffleXor, Ldmatrix, LdmatrixTrans, Mma };

const char* collectiveName(Collective kind) {
    switch (kind) {
        case Collective::SyncThreads: return "__syncthreads";
        case Collective::ShuffleXor: return "__shfl_xor_sync";
        case Collective::Ldmatrix: return "ldmatrix.x4";
        case Collective::LdmatrixTrans: return "ldmatrix.x4.trans";
        case Collective::Mma: return "mma.m16n8k16";
    }
    return "?";
}

std::string location(std::source_location where) {
    const std::string_view path = where.file_name();
    return std::string(path.substr(path.find_last_of('/') + 1)) + ":" + std::to_string(where.line());
}

std::string hex(uint32_t value) {
    char text[16];
    std::snprintf(text, sizeof text, "0x%x", value);
    return text;
}

bool sameLocation(std::source_location a, std::source_location b) {
    return a.line() == b.line() && a.column() == b.column() && std::strcmp(a.file_name(), b.file_name()) == 0;
}

struct Barrier {
    int expected = 0;
    int arrived = 0;
    uint64_t generation = 0;  // completions so far
    Collective kind = Collective::SyncThreads;
    std::source_location caller;  // of the first thread to arrive
};

// What a lane brings to __shfl_xor_sync.
struct ShuffleOperands {
    uint64_t bits = 0;
    unsigned mask = 0;
    int laneMask = 0;
};

// One warp collective: what each lane brings to it (only the kind's
// operands are set) and, for mma, every lane's result, computed once by
// the lane that completes the collective.
struct WarpExchange {
    std::array<ShuffleOperands, kWarpSize> shuffles;
    std::array<LdmatrixRow, kWarpSize> rows;  // ldmatrix: the 16 bytes at each lane's address
    std::array<MmaOperands, kWarpSize> mma;
    std::array<std::array<float, 4>, kWarpSize> mmaResults;
};

struct PendingCopy {
    std::byte* dst;
    const std::byte* src;
    bool valid;  // false: zero-fill, nothing read
    bool committed;
    std::source_location caller;
};

struct Thread {
    FiberContext fiber;
    std::unique_ptr<std::byte[]> stack;
    Index3 index;
    int id = 0;
    int warp = 0;
    int lane = 0;
    bool done = false;
    const Barrier* waitingOn = nullptr;
    uint64_t waitGeneration = 0;
    Collective waitKind = Collective::SyncThreads;
    std::source_location waitCaller;
    unsigned collectives = 0;         // warp collectives entered: alternates the exchange buffers
    std::vector<PendingCopy> copies;  // issued, not landed
};

// The history of one 16-byte chunk of shared memory in the current CTA;
// intervals count the CTA's completed __syncthreads.
struct ChunkState {
    bool pending = false;  // a cp.async into it has not landed
    int writer = -1;       // the thread of the last cp.async into it
    std::source_location writerCaller;
    int64_t landedInterval = -1;  // when that copy landed
    int64_t readInterval = -1;    // when readerWarps read it
    uint32_t readerWarps = 0;
    std::source_location readerCaller;
};

// One launch. The CUDA built-ins (the free functions of cta_emulator.h,
// below) run on a thread's fiber and work on the launch in progress
// (g_running) through its public members.
class Emulator {
public:
    Emulator(const LaunchConfig& config, const std::function<void()>& body)
        : m_config(config), m_body(body), m_rng(config.seed) {}

    Findings run();

    // Every fiber starts here.
    [[noreturn]] static void threadEntry();

    // Used by the built-ins.
    bool arrive(Barrier& barrier, Collective kind, std::source_location caller);
    WarpExchange& nextExchange();
    bool joinCollective(Collective kind, std::source_location caller);
    bool sharedChunk(const void* p, const char* what, std::source_location caller, size_t& offset);
    void noteRead(size_t offset, std::source_location caller);
    std::string where() const;
    std::string describe(size_t offset) const;
    void hazard(std::string message);
    void error(std::string message);

    const LaunchConfig& m_config;
    Index3 m_grid;
    Index3 m_block;
    Index3 m_blockDim;
    Thread* m_current = nullptr;
    Barrier m_blockBarrier;
    std::vector<ChunkState> m_chunks;
    int64_t m_interval = 0;

private:
    void startCta();
    bool runCta();  // false: deadlock

    const std::function<void()>& m_body;
    std::mt19937_64 m_rng;
    std::vector<Thread> m_threads;
    std::vector<int> m_order;  // the scheduling order of the threads
    FiberContext m_scheduler;
    std::vector<Barrier> m_warpBarriers;
    std::vector<std::array<WarpExchange, 2>> m_exchanges;  // [warp][collective parity]
    Findings m_findings;
};

// The launch in progress: the CUDA built-ins are free functions.
Emulator* g_running = nullptr;

#if defined(__GLIBC__) && defined(__GLIBC_PREREQ)
#if __GLIBC_PREREQ(2, 35)
#define PAGODA_EMULATION_POISONS_THREAD_LOCALS 1
#endif
#endif

#if defined(PAGODA_EMULATION_POISONS_THREAD_LOCALS)
constexpr bool kPoisonsThreadLocals = true;

// Fills the calling thread's zero-initialised thread_locals of the
// executable (the part of its TLS block past the initialised image) with
// 0xff bytes. Only a CTA's own thread calls it, and nothing the kernel or
// the emulator runs there has thread_locals in the executable but the
// kernel's __shared__ arrays.
void poisonThreadLocals() {
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void*) {
            for (int i = 0; i < int(info->dlpi_phnum); ++i) {
                const ElfW(Phdr)& header = info->dlpi_phdr[i];
                if (header.p_type == PT_TLS && info->dlpi_tls_data != nullptr) {
                    std::memset(static_cast<std::byte*>(info->dlpi_tls_data) + header.p_filesz, 0xff,
                                header.p_memsz - header.p_filesz);
                }
            }
            return 1;  // the executable comes first
        },
        nullptr);
}
#else
constexpr bool kPoisonsThreadLocals = false;
void poisonThreadLocals() {}
#endif

}  // namespace

Findings Emulator::run() {
    const int nThreads = m_config.threads;
    if (nThreads <= 0 || nThreads % kWarpSize != 0 || nThreads / kWarpSize > 32 ||
        m_config.sharedBytes > m_config.shared.size() ||
        reinterpret_cast<uintptr_t>(m_config.shared.data()) % kChunkBytes != 0) {
        error("bad launch: " + std::to_string(nThreads) + " threads, " + std::to_string(m_config.sharedBytes) +
              " shared bytes of " + std::to_string(m_config.shared.size()));
        return m_findings;
    }
    m_grid = {m_config.gridX, m_config.gridY, m_config.gridZ};
    m_blockDim = {unsigned(nThreads), 1, 1};
    m_threads = std::vector<Thread>(size_t(nThreads));
    m_order.resize(size_t(nThreads));
    std::iota(m_order.begin(), m_order.end(), 0);
    for (int id = 0; id < nThreads; ++id) {
        Thread& t = m_threads[size_t(id)];
        t.stack = std::make_unique_for_overwrite<std::byte[]>(kStackBytes);
        t.index = {unsigned(id), 0, 0};
        t.id = id;
        t.warp = id / kWarpSize;
        t.lane = id % kWarpSize;
    }
    m_warpBarriers.resize(size_t(nThreads / kWarpSize));
    m_exchanges.resize(size_t(nThreads / kWarpSize));
    m_chunks.resize(m_config.shared.size() / kChunkBytes);
    for (unsigned bz = 0; bz < m_grid.z; ++bz) {
        for (unsigned by = 0; by < m_grid.y; ++by) {
            for (unsigned bx = 0; bx < m_grid.x; ++bx) {
                m_block = {bx, by, bz};
                if (m_config.beforeCta) m_config.beforeCta(m_block);
                bool finished = false;
                std::thread cta([&] {
                    poisonThreadLocals();
                    startCta();
                    finished = runCta();
                });
                cta.join();
                if (!finished) return m_findings;
                if (m_config.afterCta) m_config.afterCta(m_block);
            }
        }
    }
    return m_findings;
}

void Emulator::startCta() {
    if (!m_config.shared.empty()) std::memset(m_config.shared.data(), 0xff, m_config.shared.size());
    std::fill(m_chunks.begin(), m_chunks.end(), ChunkState{});
    m_interval = 0;
    m_blockBarrier = Barrier{};
    m_blockBarrier.expected = m_config.threads;
    for (Barrier& b : m_warpBarriers) {
        b = Barrier{};
        b.expected = kWarpSize;
    }
    for (Thread& t : m_threads) {
        t.done = false;
        t.waitingOn = nullptr;
        t.collectives = 0;
        t.copies.clear();
        prepareFiber(t.fiber, {t.stack.get(), kStackBytes}, &Emulator::threadEntry);
    }
}

bool Emulator::runCta() {
    int running = m_config.threads;
    while (running > 0) {
        if (m_config.shuffleThreads) std::shuffle(m_order.begin(), m_order.end(), m_rng);
        bool progressed = false;
        for (const int id : m_order) {
            Thread& t = m_threads[size_t(id)];
            if (t.done || (t.waitingOn != nullptr && t.waitingOn->generation == t.waitGeneration)) continue;
            t.waitingOn = nullptr;
            m_current = &t;
            switchFiber(m_scheduler, t.fiber);
            progressed = true;
            if (t.done) --running;
        }
        if (!progressed) {
            std::string message = "deadlock in CTA (" + std::to_string(m_block.x) + "," + std::to_string(m_block.y) +
                                  "): " + std::to_string(running) + " threads wait, e.g.";
            int shown = 0;
            for (const Thread& t : m_threads) {
                if (t.done) continue;
                message += " thread " + std::to_string(t.id) + " at " + collectiveName(t.waitKind) + " " +
                           location(t.waitCaller) + ";";
                if (++shown == 4) break;
            }
            error(message);
            m_current = nullptr;
            return false;
        }
    }
    m_current = nullptr;
    return true;
}

void Emulator::threadEntry() {
    Emulator& e = *g_running;
    e.m_body();
    Thread& t = *e.m_current;
    if (!t.copies.empty()) {
        e.error(e.where() + " exits with " + std::to_string(t.copies.size()) +
                " cp.async copies never waited for, the first from " + location(t.copies.front().caller));
    }
    t.done = true;
    switchFiber(t.fiber, e.m_scheduler);
    std::unreachable();  // a finished thread is never resumed
}

// True for the thread that completes the barrier; the others return once it has.
bool Emulator::arrive(Barrier& barrier, Collective kind, std::source_location caller) {
    if (barrier.arrived == 0) {
        barrier.kind = kind;
        barrier.caller = caller;
    } else if (barrier.kind != kind || !sameLocation(barrier.caller, caller)) {
        error("divergence: " + where() + " reached " + collectiveName(kind) + " at " + location(caller) +
              " while other threads of its " + (kind == Collective::SyncThreads ? "CTA" : "warp") + " wait at " +
              collectiveName(barrier.kind) + " at " + location(barrier.caller));
    }
    if (++barrier.arrived == barrier.expected) {
        barrier.arrived = 0;
        ++barrier.generation;
        return true;
    }
    Thread& t = *m_current;
    t.waitingOn = &barrier;
    t.waitGeneration = barrier.generation;
    t.waitKind = kind;
    t.waitCaller = caller;
    switchFiber(t.fiber, m_scheduler);
    return false;
}

// Where the lane publishes its operands for its next warp collective. The
// two exchanges alternate: a lane can enter the collective after next only
// when every lane has left this one.
WarpExchange& Emulator::nextExchange() {
    Thread& t = *m_current;
    return m_exchanges[size_t(t.warp)][t.collectives++ % 2];
}

// Returns once the whole warp has published; true for the lane that completed it.
bool Emulator::joinCollective(Collective kind, std::source_location caller) {
    return arrive(m_warpBarriers[size_t(m_current->warp)], kind, caller);
}

// The CUDA built-ins, on the running thread's fiber.

void syncThreads(std::source_location caller) {
    Emulator& e = *g_running;
    if (e.arrive(e.m_blockBarrier, Collective::SyncThreads, caller)) ++e.m_interval;
}

uint64_t shuffleXor(uint64_t bits, unsigned mask, int laneMask, std::source_location caller) {
    Emulator& e = *g_running;
    WarpExchange& exchange = e.nextExchange();
    exchange.shuffles[size_t(e.m_current->lane)] = {bits, mask, laneMask};
    if (e.joinCollective(Collective::ShuffleXor, caller)) {
        for (int lane = 0; lane < kWarpSize; ++lane) {
            const ShuffleOperands& op = exchange.shuffles[size_t(lane)];
            if (op.mask != 0xffffffffu || op.laneMask != laneMask) {
                e.error(e.where() + ": __shfl_xor_sync at " + location(caller) + ": lane " + std::to_string(lane) +
                        " passes mask " + hex(op.mask) + " and lane mask " + std::to_string(op.laneMask) +
                        " (full mask and lane mask " + std::to_string(laneMask) + " expected)");
                break;
            }
        }
    }
    const int source = e.m_current->lane ^ laneMask;
    return source >= 0 && source < kWarpSize ? exchange.shuffles[size_t(source)].bits : bits;
}

// ldmatrix.x4 (.trans) and mma.m16n8k16 as warp_instructions.h computes them.
void ldmatrixX4(uint32_t (&r)[4], const void* row, bool transpose, std::source_location caller) {
    Emulator& e = *g_running;
    WarpExchange& exchange = e.nextExchange();
    LdmatrixRow& mine = exchange.rows[size_t(e.m_current->lane)];
    size_t offset = 0;
    if (e.sharedChunk(row, transpose ? "ldmatrix.x4.trans" : "ldmatrix.x4", caller, offset)) {
        std::memcpy(mine.data(), row, kChunkBytes);
        e.noteRead(offset, caller);
    } else {
        mine.fill(0xffff);
    }
    e.joinCollective(transpose ? Collective::LdmatrixTrans : Collective::Ldmatrix, caller);
    const std::array<uint32_t, 4> registers = ldmatrixX4Registers(exchange.rows, e.m_current->lane, transpose);
    std::copy(registers.begin(), registers.end(), r);
}

void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1, std::source_location caller) {
    Emulator& e = *g_running;
    WarpExchange& exchange = e.nextExchange();
    MmaOperands& mine = exchange.mma[size_t(e.m_current->lane)];
    std::copy(a, a + 4, mine.a.begin());
    mine.b = {b0, b1};
    std::copy(d, d + 4, mine.c.begin());
    if (e.joinCollective(Collective::Mma, caller)) exchange.mmaResults = mma16816Warp(exchange.mma);
    const std::array<float, 4>& result = exchange.mmaResults[size_t(e.m_current->lane)];
    std::copy(result.begin(), result.end(), d);
}

void copyAsync16(void* dst, const void* src, bool valid, std::source_location caller) {
    Emulator& e = *g_running;
    size_t offset = 0;
    if (!e.sharedChunk(dst, "cp.async destination", caller, offset)) return;
    if (valid) {
        const auto* from = static_cast<const std::byte*>(src);
        const bool inside = std::any_of(e.m_config.copySources.begin(), e.m_config.copySources.end(),
                                        [&](const GlobalRange& g) {
                                            const auto* begin = static_cast<const std::byte*>(g.data);
                                            return from >= begin && from + kChunkBytes <= begin + g.bytes;
                                        });
        if (!inside || reinterpret_cast<uintptr_t>(src) % kChunkBytes != 0) {
            std::string message = e.where() + ": cp.async at " + location(caller) + " into " + e.describe(offset) +
                                  " reads a " + (inside ? "misaligned source:" : "source outside every copy source:");
            for (const GlobalRange& g : e.m_config.copySources) {
                const ptrdiff_t into = from - static_cast<const std::byte*>(g.data);
                message += std::string(" byte ") + std::to_string(into) + " of " + g.name + " (" +
                           std::to_string(g.bytes) + " bytes);";
            }
            e.error(message);
            valid = false;  // zero-fill rather than read out of bounds
        }
    }
    ChunkState& chunk = e.m_chunks[offset / kChunkBytes];
    if (chunk.pending) {
        e.hazard(e.where() + ": cp.async at " + location(caller) + " into " + e.describe(offset) + " while thread " +
                 std::to_string(chunk.writer) + "'s cp.async into it (" + location(chunk.writerCaller) +
                 ") is still in flight");
    }
    const uint32_t otherWarps = chunk.readerWarps & ~(1u << e.m_current->warp);
    if (chunk.readInterval == e.m_interval && otherWarps != 0) {
        e.hazard(e.where() + ": cp.async at " + location(caller) + " overwrites " + e.describe(offset) +
                 " that warps " + hex(otherWarps) + " (a mask) read (" + location(chunk.readerCaller) +
                 ") since the last __syncthreads");
    }
    chunk.pending = true;
    chunk.writer = e.m_current->id;
    chunk.writerCaller = caller;
    e.m_current->copies.push_back(
        {static_cast<std::byte*>(dst), static_cast<const std::byte*>(src), valid, false, caller});
}

void expectAligned(const void* p, size_t bytes, std::source_location caller) {
    if (reinterpret_cast<uintptr_t>(p) % bytes == 0) return;
    Emulator& e = *g_running;
    e.error(e.where() + ": a " + std::to_string(bytes) + "-byte access at " + location(caller) + " to an address " +
            std::to_string(reinterpret_cast<uintptr_t>(p) % bytes) + " bytes past alignment");
}

void copyAsyncCommit() {
    Emulator& e = *g_running;
    for (PendingCopy& copy : e.m_current->copies) copy.committed = true;
}

// wait_group 0: the thread's committed copies land; copies issued after
// its last commit belong to no group and stay in flight.
void copyAsyncWaitAll(std::source_location caller) {
    Emulator& e = *g_running;
    Thread& t = *e.m_current;
    std::vector<PendingCopy> uncommitted;
    for (const PendingCopy& copy : t.copies) {
        if (!copy.committed) {
            uncommitted.push_back(copy);
            continue;
        }
        if (copy.valid) {
            std::memcpy(copy.dst, copy.src, kChunkBytes);
        } else {
            std::memset(copy.dst, 0, kChunkBytes);
        }
        ChunkState& chunk = e.m_chunks[size_t(copy.dst - e.m_config.shared.data()) / kChunkBytes];
        chunk.pending = false;
        chunk.landedInterval = e.m_interval;
        chunk.writer = t.id;
        chunk.writerCaller = copy.caller;
    }
    if (!uncommitted.empty()) {
        e.error(e.where() + ": cp.async.wait_group 0 at " + location(caller) + " with " +
                std::to_string(uncommitted.size()) + " copies not committed, the first from " +
                location(uncommitted.front().caller));
    }
    t.copies = std::move(uncommitted);
}

// Whether p addresses a whole, aligned chunk inside the launch's shared
// memory (an error if not); its offset.
bool Emulator::sharedChunk(const void* p, const char* what, std::source_location caller, size_t& offset) {
    const auto* base = m_config.shared.data();
    const auto* at = static_cast<const std::byte*>(p);
    if (at < base || at + kChunkBytes > base + m_config.sharedBytes) {
        error(where() + ": " + what + " at " + location(caller) + " addresses bytes " + std::to_string(at - base) +
              ".." + std::to_string(at - base + ptrdiff_t(kChunkBytes)) + ", outside the " +
              std::to_string(m_config.sharedBytes) + " bytes of dynamic shared memory");
        return false;
    }
    offset = size_t(at - base);
    if (offset % kChunkBytes != 0) {
        error(where() + ": " + what + " at " + location(caller) + " misaligned: " + describe(offset));
        return false;
    }
    return true;
}

// An ldmatrix read: the data must have landed, and before a barrier that
// orders it before this read.
void Emulator::noteRead(size_t offset, std::source_location caller) {
    ChunkState& chunk = m_chunks[offset / kChunkBytes];
    if (chunk.pending) {
        hazard(where() + ": ldmatrix at " + location(caller) + " reads " + describe(offset) + " before thread " +
               std::to_string(chunk.writer) + "'s cp.async into it (" + location(chunk.writerCaller) +
               ") was waited for");
    } else if (chunk.landedInterval == m_interval) {
        hazard(where() + ": ldmatrix at " + location(caller) + " reads " + describe(offset) + ", which thread " +
               std::to_string(chunk.writer) + "'s cp.async (" + location(chunk.writerCaller) +
               ") landed with no __syncthreads in between");
    }
    if (chunk.readInterval != m_interval) {
        chunk.readInterval = m_interval;
        chunk.readerWarps = 0;
    }
    chunk.readerWarps |= 1u << m_current->warp;
    chunk.readerCaller = caller;
}

std::string Emulator::where() const {
    const Thread& t = *m_current;
    return "CTA (" + std::to_string(m_block.x) + "," + std::to_string(m_block.y) + ") thread " +
           std::to_string(t.id) + " (warp " + std::to_string(t.warp) + ", lane " + std::to_string(t.lane) +
           ") after " + std::to_string(m_interval) + " __syncthreads";
}

std::string Emulator::describe(size_t offset) const {
    std::string s = "shared byte " + std::to_string(offset);
    if (m_config.describeShared) s += " (" + m_config.describeShared(offset) + ")";
    return s;
}

void Emulator::hazard(std::string message) {
    if (m_findings.hazards.size() < kMaxMessages) m_findings.hazards.push_back(std::move(message));
    ++m_findings.hazardCount;
}

void Emulator::error(std::string message) {
    if (m_findings.errors.size() < kMaxMessages) m_findings.errors.push_back(std::move(message));
    ++m_findings.errorCount;
}

Findings launch(const LaunchConfig& config, const std::function<void()>& body) {
    Emulator emulator(config, body);
    g_running = &emulator;
    Findings findings = emulator.run();
    g_running = nullptr;
    return findings;
}

bool poisonsStaticShared() { return kPoisonsThreadLocals; }
const Index3& threadIndex() { return g_running->m_current->index; }
const Index3& blockIndex() { return g_running->m_block; }
const Index3& blockSize() { return g_running->m_blockDim; }
const Index3& gridSize() { return g_running->m_grid; }

}  // namespace pagoda::cuda::emulation
