#pragma once
// A fixed pool of worker threads for data-parallel kernels. The calling
// thread takes part in every job, so a pool of size N runs N-1 workers.
// Idle workers spin briefly on a generation counter before sleeping, so a
// job that follows another within ~100 us starts without a wake-up.

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pagoda::cpu {

class ThreadPool {
public:
    // nThreads <= 0 means std::thread::hardware_concurrency().
    explicit ThreadPool(int nThreads = 0);
    ~ThreadPool();
    ThreadPool(const ThreadPool&) = delete;
    ThreadPool& operator=(const ThreadPool&) = delete;

    int size() const { return m_size; }

    // Runs fn(thread, nThreads) once on every thread; returns when all are done.
    // Thread 0 is the caller. One caller at a time, never from inside fn;
    // fn must not throw on a worker (an exception on the caller propagates
    // after the workers finish).
    void run(const std::function<void(int thread, int nThreads)>& fn);

    // Splits [0, n) into one contiguous chunk per thread, rounded to multiples
    // of `grain`, and runs fn(begin, end) on each non-empty chunk.
    void parallelFor(size_t n, size_t grain, const std::function<void(size_t begin, size_t end)>& fn);

private:
    void workerLoop(int index);
    uint64_t waitForGeneration(uint64_t seen);
    void waitForWorkers();

    int m_size;
    std::vector<std::thread> m_workers;
    std::mutex m_mutex;
    std::condition_variable m_start;
    std::condition_variable m_done;
    const std::function<void(int, int)>* m_job = nullptr;
    std::atomic<uint64_t> m_generation = 0;  // bumped under m_mutex to start a job
    std::atomic<int> m_pending = 0;          // workers still running the current job
    bool m_stop = false;
};

}  // namespace pagoda::cpu
