#include "kernels/cpu/thread_pool.h"

#include <immintrin.h>

#include <algorithm>
#include <chrono>

namespace pagoda::cpu {
namespace {

// How long an idle thread polls before it sleeps. Decode runs a few matmuls
// per layer with short serial gaps between them; polling through those gaps
// saves a futex wake-up per job (dispatch measured at ~2 us on an idle
// 2-core VM).
constexpr auto kSpinTime = std::chrono::microseconds(100);

// Polls `done` until it returns true or kSpinTime has passed. Between
// batches of polls it yields the core: with more runnable threads than cores
// (a shared machine, or an oversized pool) the thread being waited for may
// need it. Measured on a loaded 2-core VM, pure spinning made a dispatch
// take ~30 us and yielding ~6 us; on an idle one they are equal.
template <class Predicate>
bool spinUntil(Predicate done) {
    const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (done()) return true;
            _mm_pause();
        }
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::yield();
    }
}

}  // namespace

ThreadPool::ThreadPool(int nThreads)
    : m_size(nThreads > 0 ? nThreads : std::max(1, int(std::thread::hardware_concurrency()))) {
    m_workers.reserve(size_t(m_size - 1));
    for (int i = 1; i < m_size; ++i) {
        m_workers.emplace_back([this, i] { workerLoop(i); });
    }
}

ThreadPool::~ThreadPool() {
    {
        std::lock_guard lock(m_mutex);
        m_stop = true;
        m_generation.fetch_add(1, std::memory_order_release);
    }
    m_start.notify_all();
    for (std::thread& worker : m_workers) worker.join();
}

void ThreadPool::run(const std::function<void(int thread, int nThreads)>& fn) {
    if (m_size == 1) {
        fn(0, 1);
        return;
    }
    // Every worker finished the previous job before the last run() returned,
    // so nobody reads m_job while it changes.
    m_job = &fn;
    m_pending.store(m_size - 1, std::memory_order_relaxed);
    {
        std::lock_guard lock(m_mutex);
        m_generation.fetch_add(1, std::memory_order_release);
    }
    m_start.notify_all();
    try {
        fn(0, m_size);
    } catch (...) {
        waitForWorkers();
        throw;
    }
    waitForWorkers();
}

void ThreadPool::parallelFor(size_t n, size_t grain, const std::function<void(size_t begin, size_t end)>& fn) {
    if (n == 0) return;
    grain = std::max<size_t>(grain, 1);
    const size_t nGrains = (n + grain - 1) / grain;
    const size_t nChunks = std::min(nGrains, size_t(m_size));
    if (nChunks == 1) {
        fn(0, n);
        return;
    }
    // Chunk t gets grains [t * nGrains / nChunks, (t + 1) * nGrains / nChunks):
    // sizes differ by at most one grain.
    run([&](int thread, int) {
        const size_t t = size_t(thread);
        if (t >= nChunks) return;
        const size_t begin = t * nGrains / nChunks * grain;
        const size_t end = std::min(n, (t + 1) * nGrains / nChunks * grain);
        if (begin < end) fn(begin, end);
    });
}

void ThreadPool::workerLoop(int index) {
    uint64_t seen = 0;
    for (;;) {
        seen = waitForGeneration(seen);
        // m_stop and m_job were written before the generation was released.
        if (m_stop) return;
        (*m_job)(index, m_size);
        if (m_pending.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            // Taking the lock orders this wake-up after the caller's check of
            // m_pending in waitForWorkers(), so it cannot be lost.
            { std::lock_guard lock(m_mutex); }
            m_done.notify_one();
        }
    }
}

uint64_t ThreadPool::waitForGeneration(uint64_t seen) {
    uint64_t generation = seen;
    const auto changed = [&] {
        generation = m_generation.load(std::memory_order_acquire);
        return generation != seen;
    };
    if (spinUntil(changed)) return generation;
    std::unique_lock lock(m_mutex);
    m_start.wait(lock, changed);
    return generation;
}

void ThreadPool::waitForWorkers() {
    const auto finished = [this] { return m_pending.load(std::memory_order_acquire) == 0; };
    if (spinUntil(finished)) return;
    std::unique_lock lock(m_mutex);
    m_done.wait(lock, finished);
}

}  // namespace pagoda::cpu
