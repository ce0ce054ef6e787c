#!/usr/bin/env python3
"""How close cuBLAS comes to the memory bandwidth on the decode step's
matrix shapes: y = x @ W.T in PyTorch, f16, 1 and 8 tokens, the mean of
100 calls timed with CUDA events after 5 warm-up calls. Needs torch with
CUDA (the GPU machine has it). Prints GB/s of weights read.

usage: cublas_gemv_probe.py
"""

import torch

SHAPES = [(4096, 4096), (11008, 4096), (4096, 11008), (14336, 4096), (32000, 4096)]

for m, k in SHAPES:
    w = torch.randn(m, k, device="cuda", dtype=torch.float16)
    for n in (1, 8):
        x = torch.randn(n, k, device="cuda", dtype=torch.float16)
        for _ in range(5):
            x @ w.T
        torch.cuda.synchronize()
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(100):
            x @ w.T
        stop.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(stop) / 100
        print(f"cublas f16 {m}x{k} n={n}: {ms * 1e3:.1f} us, {m * k * 2 / ms / 1e6:.0f} GB/s")
