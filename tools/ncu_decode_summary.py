#!/usr/bin/env python3
"""Where a decode step's GPU time goes, from Nsight Compute's CSV of a
`pagoda-bench gpu` run whose decode steps come last (tools/gpu_bench.sh
runs `ncu --csv --print-units base --metrics gpu__time_duration.sum`):
the launches from the STEPS-th last embedding kernel (each step starts
with the token embedding) to the end, summed per kernel and divided by
STEPS. Kernel times under ncu are of kernels run one at a time, so their
sum exceeds a step's time by the gaps the profiler adds, not the other way.

usage: ncu_decode_summary.py CSV --steps N [--step-start REGEX]
"""

import argparse
import csv
import re
import sys

UNITS = {"nsecond": 1e-3, "ns": 1e-3, "usecond": 1.0, "us": 1.0, "msecond": 1e3, "ms": 1e3, "second": 1e6, "s": 1e6}


def short_name(name):
    """'void pagoda::cuda::mv::matvecKernel<(pagoda::DType)1, 1>(args)' -> 'mv::matvecKernel<(DType)1, 1>'."""
    name = name.strip()
    if name.startswith("void "):
        name = name[5:]
    if name.endswith(")"):  # the parameter list: from the parenthesis matching the last one
        depth = 0
        for i in range(len(name) - 1, -1, -1):
            depth += {")": 1, "(": -1}.get(name[i], 0)
            if depth == 0:
                name = name[:i]
                break
    name = name.replace("pagoda::cuda::", "").replace("pagoda::", "")
    return name if len(name) <= 90 else name[:87] + "..."


def read_launches(path):
    """[(id, kernel name, microseconds)] in launch order."""
    with open(path, newline="", errors="replace") as f:
        lines = f.read().splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith('"ID"')), None)
    if start is None:
        sys.exit(f"{path}: no ncu CSV header (a line starting with \"ID\")")
    rows = csv.DictReader(lines[start:])
    launches = {}
    for row in rows:
        if row.get("Metric Name") != "gpu__time_duration.sum":
            continue
        try:
            launch_id = int(row["ID"])
            value = float(row["Metric Value"].replace(",", ""))
        except (KeyError, ValueError):
            continue
        unit = row.get("Metric Unit", "nsecond")
        if unit not in UNITS:
            sys.exit(f"{path}: unknown time unit '{unit}'")
        launches[launch_id] = (row["Kernel Name"], value * UNITS[unit])
    return [(i, *launches[i]) for i in sorted(launches)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("--steps", type=int, required=True)
    parser.add_argument("--step-start", default="embedRowsKernel")
    args = parser.parse_args()
    launches = read_launches(args.csv)
    starts = [k for k, (_, name, _) in enumerate(launches) if re.search(args.step_start, name)]
    if len(starts) < args.steps:
        sys.exit(f"{args.csv}: {len(starts)} launches match '{args.step_start}', {args.steps} steps asked for")
    tail = launches[starts[-args.steps]:]
    per_kernel = {}
    for _, name, us in tail:
        count, total = per_kernel.get(short_name(name), (0, 0.0))
        per_kernel[short_name(name)] = (count + 1, total + us)
    step_us = sum(us for _, _, us in tail) / args.steps
    print(f"decode step: {len(tail) / args.steps:.1f} launches, {step_us:.1f} us of kernel time "
          f"(mean of the last {args.steps} steps)")
    print(f"{'launches':>8} {'us/step':>9} {'share':>6}  kernel")
    for name, (count, total) in sorted(per_kernel.items(), key=lambda item: -item[1][1]):
        print(f"{count / args.steps:>8.1f} {total / args.steps:>9.1f} {100 * total / args.steps / step_us:>5.1f}%  {name}")


if __name__ == "__main__":
    main()
