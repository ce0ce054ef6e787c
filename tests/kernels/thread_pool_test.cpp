#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/thread_pool.h"

namespace pagoda::cpu {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
    for (const int nThreads : {1, 2, 3, 4, 7}) {
        ThreadPool pool(nThreads);
        for (const size_t n : {0, 1, 2, 3, 5, 8, 13, 64, 100, 1000, 4097}) {
            for (const size_t grain : {0, 1, 2, 3, 7, 64, 1000}) {
                SCOPED_TRACE("threads " + std::to_string(nThreads) + ", n " + std::to_string(n) + ", grain " +
                             std::to_string(grain));
                std::vector<std::atomic<int>> hits(n);
                std::atomic<int> chunks = 0;
                std::atomic<bool> misaligned = false;
                pool.parallelFor(n, grain, [&](size_t begin, size_t end) {
                    ++chunks;
                    if (begin >= end || end > n || (grain > 1 && (begin % grain != 0 || (end != n && end % grain != 0)))) {
                        misaligned = true;
                    }
                    for (size_t i = begin; i < end; ++i) ++hits[i];
                });
                EXPECT_FALSE(misaligned);
                EXPECT_LE(chunks, nThreads);
                for (size_t i = 0; i < n; ++i) ASSERT_EQ(hits[i], 1) << "index " << i;
            }
        }
    }
}

TEST(ThreadPool, RunCallsEveryThreadOncePerJob) {
    ThreadPool pool(3);
    ASSERT_EQ(pool.size(), 3);
    std::vector<std::atomic<int>> calls(3);
    std::atomic<bool> wrongCount = false;
    constexpr int kJobs = 2000;
    for (int job = 0; job < kJobs; ++job) {
        pool.run([&](int thread, int nThreads) {
            if (nThreads != 3) wrongCount = true;
            ++calls[size_t(thread)];
        });
    }
    EXPECT_FALSE(wrongCount);
    for (const auto& c : calls) EXPECT_EQ(c, kJobs);
}

TEST(ThreadPool, RunsAfterWorkersFellAsleep) {
    ThreadPool pool(2);
    std::atomic<int> calls = 0;
    for (int job = 0; job < 3; ++job) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // longer than the spin phase
        pool.run([&](int, int) { ++calls; });
    }
    EXPECT_EQ(calls, 6);
}

TEST(ThreadPool, SingleThreadRunsInline) {
    ThreadPool pool(1);
    const std::thread::id caller = std::this_thread::get_id();
    pool.run([&](int thread, int nThreads) {
        EXPECT_EQ(thread, 0);
        EXPECT_EQ(nThreads, 1);
        EXPECT_EQ(std::this_thread::get_id(), caller);
    });
}

TEST(ThreadPool, CallerExceptionPropagatesAndPoolStaysUsable) {
    ThreadPool pool(2);
    std::atomic<int> calls = 0;
    EXPECT_THROW(pool.run([&](int thread, int) {
        ++calls;
        if (thread == 0) throw std::runtime_error("job failed");
    }),
                 std::runtime_error);
    EXPECT_EQ(calls, 2);
    pool.run([&](int, int) { ++calls; });
    EXPECT_EQ(calls, 4);
}

TEST(ThreadPool, DestroysCleanlyWithoutJobs) {
    for (int i = 0; i < 20; ++i) ThreadPool pool(3);
}

}  // namespace
}  // namespace pagoda::cpu
