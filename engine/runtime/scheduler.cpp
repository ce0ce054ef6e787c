#include "engine/runtime/scheduler.h"

#include <algorithm>
#include <utility>

namespace pagoda::runtime {
namespace {

// Waiting order: higher priority first, then submission order.
bool waitsBefore(const Sequence& a, const Sequence& b) {
    if (a.request.priority != b.request.priority) return a.request.priority > b.request.priority;
    return a.arrival < b.arrival;
}

// Keep order among running sequences: higher priority, then earlier
// admission; the last one is preempted first.
bool keptBefore(const Sequence& a, const Sequence& b) {
    if (a.request.priority != b.request.priority) return a.request.priority > b.request.priority;
    return a.admission < b.admission;
}

void erase(std::vector<Sequence*>& list, Sequence* sequence) { std::erase(list, sequence); }

}  // namespace

void Scheduler::enqueue(std::unique_ptr<Sequence> sequence) {
    auto at = std::upper_bound(m_waiting.begin(), m_waiting.end(), sequence,
                               [](const auto& a, const auto& b) { return waitsBefore(*a, *b); });
    m_waiting.insert(at, std::move(sequence));
}

std::unique_ptr<Sequence> Scheduler::removeRunning(Sequence* sequence) {
    auto it = std::find_if(m_running.begin(), m_running.end(), [&](const auto& s) { return s.get() == sequence; });
    std::unique_ptr<Sequence> owned = std::move(*it);
    m_running.erase(it);
    return owned;
}

Result<int> Scheduler::tokensThatFit(const KvCache& cache, const Sequence& sequence, int limit) const {
    PAGODA_ASSIGN_OR_RETURN(const bool all, cache.canAppend(sequence.seq, limit));
    if (all) return limit;
    // canAppend is monotone in the token count: it fits lo tokens, not hi.
    int lo = 0, hi = limit;
    while (hi - lo > 1) {
        const int mid = lo + (hi - lo) / 2;
        PAGODA_ASSIGN_OR_RETURN(const bool fits, cache.canAppend(sequence.seq, mid));
        (fits ? lo : hi) = mid;
    }
    return lo;
}

Sequence* Scheduler::preemptionVictim(std::span<Sequence* const> unscheduled) const {
    return *std::max_element(unscheduled.begin(), unscheduled.end(),
                             [](const Sequence* a, const Sequence* b) { return keptBefore(*a, *b); });
}

void Scheduler::preempt(StepPlan& plan, KvCache& cache, Sequence* sequence) {
    if (auto released = cache.preempt(sequence->seq); !released) {
        failRunning(plan, cache, sequence, released.error());
        return;
    }
    sequence->seq = -1;
    sequence->computed = 0;
    ++sequence->stats.preemptions;
    ++plan.preemptions;
    enqueue(removeRunning(sequence));
}

void Scheduler::failRunning(StepPlan& plan, KvCache& cache, Sequence* sequence, Error error) {
    if (sequence->seq >= 0) (void)cache.release(sequence->seq);
    sequence->seq = -1;
    plan.failed.emplace_back(removeRunning(sequence), std::move(error));
}

void Scheduler::addChunk(StepPlan& plan, KvCache& cache, ForwardBatch& batch, Sequence* sequence, int nTokens) {
    const auto tokens = std::span(sequence->tokens).subspan(size_t(sequence->computed), size_t(nTokens));
    auto status = cache.addChunk(batch, sequence->seq, tokens, false);
    if (!status || *status != Alloc::Ok) {
        failRunning(plan, cache, sequence,
                    status ? Error{fmt::format("KV cache refused {} tokens it reported to fit", nTokens)}
                           : status.error());
        return;
    }
    const bool decode = nTokens == 1 && sequence->generated > 0 && sequence->pending() == 1 &&
                        sequence->computed >= sequence->computedPeak;
    plan.chunks.push_back({sequence, nTokens, decode});
    (decode ? plan.decodeTokens : plan.prefillTokens) += nTokens;
    const int recomputed = std::max(0, std::min(sequence->computed + nTokens, sequence->computedPeak) - sequence->computed);
    plan.recomputedTokens += recomputed;
    sequence->stats.recomputedTokens += recomputed;
    sequence->computed += nTokens;
    sequence->computedPeak = std::max(sequence->computedPeak, sequence->computed);
}

void Scheduler::admitWaiting(StepPlan& plan, KvCache& cache, int contextLimit, ForwardBatch& batch, int& budget) {
    const int limit = m_limits.mode == BatchingMode::Sequential ? 1 : m_limits.maxBatch;
    while (!m_waiting.empty() && int(m_running.size()) < limit) {
        // Continuous batching admits only what can start prefilling now;
        // static batching forms the whole batch and prefills it over the next steps.
        if (m_limits.mode == BatchingMode::Continuous && budget == 0) break;
        Sequence* s = m_waiting.front().get();
        if (int(s->tokens.size()) > contextLimit) {
            plan.overflowed.push_back(std::move(m_waiting.front()));
            m_waiting.erase(m_waiting.begin());
            continue;
        }
        auto fits = cache.canAdmit(s->tokens);
        if (fits && !*fits) break;  // first come, first served: nobody overtakes the head
        Result<Admission> admission = fits ? cache.admit(s->tokens) : std::unexpected(fits.error());
        if (admission && admission->status == Alloc::NoSpace) break;
        if (!admission) {
            plan.failed.emplace_back(std::move(m_waiting.front()), admission.error());
            m_waiting.erase(m_waiting.begin());
            continue;
        }
        s->seq = admission->seq;
        s->computed = admission->hitTokens;
        s->admission = m_nextAdmission++;
        ++plan.admissions;
        if (cache.blocks().config().prefixCaching) plan.prefixQueryTokens += int(s->tokens.size());
        plan.prefixHitTokens += admission->hitTokens;
        if (!s->admittedOnce) {
            s->admittedOnce = true;
            s->stats.reusedTokens = admission->hitTokens;
            s->stats.queueSeconds = std::chrono::duration<double>(Clock::now() - s->submitted).count();
        }
        m_running.push_back(std::move(m_waiting.front()));
        m_waiting.erase(m_waiting.begin());
        if (budget == 0) continue;
        auto n = tokensThatFit(cache, *s, std::min(s->pending(), budget));
        if (!n) {
            failRunning(plan, cache, s, n.error());
        } else if (*n > 0) {
            addChunk(plan, cache, batch, s, *n);
            budget -= *n;
        }
    }
}

StepPlan Scheduler::schedule(KvCache& cache, int contextLimit, ForwardBatch& batch) {
    batch.tokens.clear();
    batch.slots.clear();
    batch.localSlots.clear();
    batch.chunks.clear();
    StepPlan plan;
    int budget = m_limits.maxBatchTokens;
    const bool batchWasEmpty = m_running.empty();

    // Sequences waiting for one token (decode) first, so that each of them
    // gets its token (budget >= maxBatch); prefill chunks share the rest.
    std::vector<Sequence*> order;
    for (const auto& s : m_running) order.push_back(s.get());
    std::sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) {
        const bool decodeA = a->pending() == 1, decodeB = b->pending() == 1;
        if (decodeA != decodeB) return decodeA;
        return keptBefore(*a, *b);
    });
    std::vector<Sequence*> unscheduled = order;  // preemption candidates
    for (Sequence* s : order) {
        if (budget == 0) break;
        if (std::find(unscheduled.begin(), unscheduled.end(), s) == unscheduled.end()) continue;  // preempted
        const int wanted = std::min(s->pending(), budget);
        int n = 0;
        while (s->running()) {
            auto fit = tokensThatFit(cache, *s, wanted);
            if (!fit) {
                erase(unscheduled, s);
                failRunning(plan, cache, s, fit.error());
                break;
            }
            n = *fit;
            if (n > 0) break;
            // Out of blocks: the sequence kept last makes room (possibly s itself).
            Sequence* victim = preemptionVictim(unscheduled);
            erase(unscheduled, victim);
            preempt(plan, cache, victim);
        }
        if (!s->running() || n == 0) continue;
        erase(unscheduled, s);
        addChunk(plan, cache, batch, s, n);
        budget -= n;
    }

    // A step that had to preempt admits nobody: the freed blocks go to the
    // sequences that are running.
    const bool admit = plan.preemptions == 0 && (m_limits.mode == BatchingMode::Continuous || batchWasEmpty);
    if (admit) admitWaiting(plan, cache, contextLimit, batch, budget);
    return plan;
}

std::unique_ptr<Sequence> Scheduler::take(RequestId id, KvCache& cache) {
    auto byId = [&](const auto& s) { return s->id == id; };
    if (auto it = std::find_if(m_waiting.begin(), m_waiting.end(), byId); it != m_waiting.end()) {
        std::unique_ptr<Sequence> owned = std::move(*it);
        m_waiting.erase(it);
        return owned;
    }
    auto it = std::find_if(m_running.begin(), m_running.end(), byId);
    if (it == m_running.end()) return nullptr;
    (void)cache.release((*it)->seq);
    (*it)->seq = -1;
    return removeRunning(it->get());
}

void Scheduler::requeue(Sequence* sequence, KvCache& cache) {
    (void)cache.release(sequence->seq);
    sequence->seq = -1;
    sequence->computed = 0;
    enqueue(removeRunning(sequence));
}

int Scheduler::dropAllRunning() {
    const int n = int(m_running.size());
    while (!m_running.empty()) {
        Sequence* s = m_running.back().get();
        s->seq = -1;
        s->computed = 0;
        ++s->stats.preemptions;
        enqueue(removeRunning(s));
    }
    return n;
}

std::vector<std::unique_ptr<Sequence>> Scheduler::takeAllWaiting() { return std::exchange(m_waiting, {}); }

}  // namespace pagoda::runtime
