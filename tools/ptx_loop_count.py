#!/usr/bin/env python3
"""Instructions in each loop of each kernel of a PTX file: the lines from a
loop's label to the branch back to it (a backward `bra`), counting
instructions only (not labels, directives or braces). The static figures in
docs/PERFORMANCE.md and docs/CUDA.md (instructions per weight element of the
matvec kernels) come from it, over

  nvcc -I. -O3 -DNDEBUG -arch=sm_90 -std=c++17 -ptx kernels/cuda/matvec.cu -o matvec.ptx
  tools/ptx_loop_count.py matvec.ptx --match 'ELi1ELNS1_7ProductE0'

(the 1-token plain kernels; the weight type is the DType number in each
mangled name: 2 Q4_0, 3 Q4_1, 6 Q5_0, 7 Q5_1, 8 Q8_0, 10 Q2_K, 11 Q3_K,
12 Q4_K, 13 Q5_K, 14 Q6_K)."""

import argparse
import re
import sys


def loops(body):
    labels = {}
    for i, line in enumerate(body):
        m = re.match(r"^(\$L__BB\d+_\d+):", line.strip())
        if m:
            labels[m.group(1)] = i
    counts = []
    for i, line in enumerate(body):
        m = re.search(r"bra(?:\.uni)?\s+(\$L__BB\d+_\d+);", line)
        if m and m.group(1) in labels and labels[m.group(1)] < i:
            segment = body[labels[m.group(1)]:i + 1]
            counts.append(sum(1 for x in segment if re.match(r"\s+[@a-z]", x)))
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ptx")
    parser.add_argument("--match", default="", help="only kernels whose mangled name contains this")
    args = parser.parse_args()
    text = open(args.ptx).read()
    for m in re.finditer(r"\.entry (\S+)\((.*?)\n\}\n", text, re.S):
        name = m.group(1)
        if args.match in name:
            print(name, loops(m.group(0).split("\n")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
