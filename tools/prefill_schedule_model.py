#!/usr/bin/env python3
"""A model (not a measurement) of how long the prefill attention grid takes
in each CTA order, for one causal sequence: every CTA is one (128-query
tile, head) and takes time proportional to the K/V positions it reads;
the GPU starts CTAs in grid order on the first free slot (SMs x CTAs per
SM). Compares the order the kernel had until 2026-11-28 (each head's tiles
together, longest first within a head) with the plan's order since
(longest first over every tile, a tile's heads together), against the
ideal (total work / slots).

usage: tools/prefill_schedule_model.py [--sms 132] [--ctas-per-sm 2] [--heads 32]
"""

import argparse
import heapq

TILE_ROWS = 128


def makespan(durations, slots):
    free_at = [0.0] * slots
    end = 0.0
    for d in durations:
        start = heapq.heappop(free_at)
        heapq.heappush(free_at, start + d)
        end = max(end, start + d)
    return end


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sms", type=int, default=132)
    parser.add_argument("--ctas-per-sm", type=int, default=2)
    parser.add_argument("--heads", type=int, default=32)
    args = parser.parse_args()
    slots = args.sms * args.ctas_per_sm
    print(f"{'context':>8} {'ideal':>8} {'per head':>9} {'of ideal':>9} {'longest 1st':>12} {'of ideal':>9} {'ratio':>6}")
    for context in (1024, 2048, 4096, 8192, 16384):
        tiles = context // TILE_ROWS
        # Tile t reads the (t + 1) * 128 positions up to its last query.
        work = [(t + 1) * TILE_ROWS for t in range(tiles)]
        per_head = [w for _ in range(args.heads) for w in reversed(work)]
        longest_first = [w for w in reversed(work) for _ in range(args.heads)]
        ideal = sum(per_head) / slots
        before = makespan(per_head, slots)
        after = makespan(longest_first, slots)
        print(f"{context:>8} {ideal:>8.0f} {before:>9.0f} {100 * ideal / before:>8.0f}% {after:>12.0f} "
              f"{100 * ideal / after:>8.0f}% {before / after:>5.2f}x")


if __name__ == "__main__":
    main()
