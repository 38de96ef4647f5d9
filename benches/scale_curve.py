#!/usr/bin/env python3
"""The scale curve of docs/benchmarks.md: whole runs of growing chains, fan-outs and states,
in memory and durable, each in a process of its own under /usr/bin/time for peak memory.

Usage (from the repository root):
    cargo build --release -p ao-graph --example shapes
    python3 benches/scale_curve.py [--shapes target/release/examples/shapes] [--reps 3]

Prints a Markdown table: median time of a whole run (the workflow compiled beforehand), time
per unit of work (step, task, or MB of state), the peak RSS of the process, and its RSS once the
workflow is loaded, before any run (the difference is what the runs took). The state shape runs
100 steps over a state of the given size; its cost per step does not depend on the size, so its
time is shown per MB of state (what writing the data costs, once per run).
"""

import argparse
import json
import re
import subprocess

CASES = [
    ("chain", 10, None),
    ("chain", 1000, None),
    ("chain", 10000, None),
    ("fan", 10, None),
    ("fan", 100, None),
    ("fan", 1000, None),
    ("fan", 10000, None),
    ("state", 100, 1 << 10),
    ("state", 100, 1 << 20),
    ("state", 100, 10 << 20),
]


def run(shapes, shape, n, size, durable, reps):
    cmd = ["/usr/bin/time", "-v", shapes, shape, str(n), "--reps", str(reps), "--json"]
    if size is not None:
        cmd += ["--bytes", str(size)]
    if durable:
        cmd.append("--durable")
    p = subprocess.run(cmd, check=True, capture_output=True, text=True)
    figures = json.loads(p.stdout.strip().splitlines()[-1])
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1))
    return figures, rss_kb * 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default="target/release/examples/shapes")
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    print("| shape | size | mode | whole run (median) | per unit | peak RSS | RSS loaded | store after the runs |")
    print("|---|---|---|---|---|---|---|---|")
    for shape, n, size in CASES:
        for durable in (False, True):
            reps = 1 if (size or 0) >= 10 << 20 or n >= 10000 else args.reps
            f, rss = run(args.shapes, shape, n, size, durable, reps)
            t = f["median_s"]
            if shape == "chain":
                label, per = f"{n:,} steps", f"{t / n * 1e6:,.1f} µs/step"
            elif shape == "fan":
                label, per = f"{n:,} tasks", f"{t / n * 1e6:,.1f} µs/task"
            else:
                mb = size / (1 << 20)
                label = f"{size // 1024:,} KB state, {n} steps"
                per = f"{t / n * 1e6:,.1f} µs/step"
                if mb >= 1:
                    per += f", {t / mb * 1e3:,.1f} ms/MB"
            store = f"{f['store_bytes'] / 1e6:,.1f} MB ({reps} run{'s' if reps > 1 else ''})" if durable else "—"
            loaded = f.get("rss_loaded_bytes")
            loaded = f"{loaded / 1e6:,.1f} MB" if loaded else "—"
            print(f"| {shape} | {label} | {'durable' if durable else 'in memory'} | "
                  f"{t * 1e3:,.2f} ms | {per} | {rss / 1e6:,.1f} MB | {loaded} | {store} |", flush=True)


if __name__ == "__main__":
    main()
