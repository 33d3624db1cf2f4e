#!/usr/bin/env python3
"""Interleaved rounds of two builds of weft's bench, for before/after comparisons.

  tools/ab.py BENCH_A BENCH_B ROUNDS [WORKLOAD...]
  e.g. tools/ab.py /tmp/throughput-before bazel-out/k8-opt/bin/bench/throughput 5 W3 W6

Runs `BENCH --workers=2 WORKLOAD...` for A and B in turn (the order alternates every round,
so machine drift hits both alike) and prints, per metric, each side's median and the median
of the per-round ratios (>1 = B better: lower for times, higher for rates). Copy the
binaries out of bazel-out first: a build replaces them. For weft against a peer runtime use
shared/perf/peers/versus.sh.
"""
import collections
import statistics
import subprocess
import sys

# Rates are better higher, every other figure (times, latencies) lower: the rule of
# shared/perf/peers/versus.sh, with the network workloads' rates added.
HIGHER_IS_BETTER = {'best', 'median', 'post_best', 'calls_per_s', 'msgs_per_s', 'req_per_s'}
INFO = {'n', 'tasks', 'work_ns'}


def run(bench, workloads):
    proc = subprocess.run([bench, '--workers=2'] + workloads, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f'ab: {bench} exited with {proc.returncode}:\n{proc.stderr}')
    figures = {}
    for line in proc.stdout.splitlines():
        f = line.split()  # weft <workload> <metric> <value> <unit>
        if len(f) >= 4 and f[0] == 'weft':
            figures[(f[1], f[2])] = float(f[3])
    return figures


def main():
    if len(sys.argv) < 4 or not sys.argv[3].isdigit() or int(sys.argv[3]) < 1:
        sys.exit(__doc__)
    a, b, rounds, workloads = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    seen = (collections.defaultdict(list), collections.defaultdict(list))  # A's, B's
    for r in range(rounds):
        for side in ((0, 1) if r % 2 == 0 else (1, 0)):
            for key, value in run((a, b)[side], workloads).items():
                seen[side][key].append(value)
    print('| workload | metric | A median | B median | B vs A (median of rounds, >1 = B better) '
          '| rounds B better |')
    print('|---|---|---:|---:|---:|---:|')
    for key, va in seen[0].items():
        vb = seen[1].get(key, [])
        if key[1] in INFO or not vb:
            continue
        n = min(len(va), len(vb))
        ratios = [vb[i] / va[i] if key[1] in HIGHER_IS_BETTER else va[i] / vb[i] for i in range(n)]
        better = sum(1 for x in ratios if x > 1)
        print(f'| {key[0]} | {key[1]} | {statistics.median(va):.1f} | {statistics.median(vb):.1f} '
              f'| {statistics.median(ratios):.2f} | {better}/{n} |')


if __name__ == '__main__':
    main()
