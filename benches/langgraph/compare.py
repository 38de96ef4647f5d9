#!/usr/bin/env python3
"""Side-by-side timing of `ao`'s engine and LangGraph on the same shapes, in one invocation.

Shapes (the same on both sides):
  chain     N nodes in a line, each doing x = x + 1 (one task per superstep)
  fan-out   one node sent to N items at once (LangGraph: `Send`; ao: `for_each`), each writing
            item * 2 to an appended list and item to a summed counter

LangGraph runs in this process three ways: without a checkpointer ("in memory"), with
`InMemorySaver`, and with `SqliteSaver` on a file, both checkpointers with `durability="sync"`
(a step's checkpoint is written before the next step starts, as in `ao`). `ao` runs in
its own process (`cargo run --release -p ao-graph --example shapes`), in memory and with its
durable SQLite run store. Rounds alternate between the two sides so that load on a shared
machine hits both alike; the figures are medians over all rounds.

Usage (from the repository root):
    python3 benches/langgraph/compare.py            # creates target/langgraph-venv on first use
    python3 benches/langgraph/compare.py --rounds 5 --chain 1000 --fan 100

The first run installs `langgraph` and `langgraph-checkpoint-sqlite` from PyPI into a venv in
`target/langgraph-venv` and re-runs itself there. Output: a table on stdout and, with --json FILE, the
raw figures.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import venv

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
VENV = os.path.join(ROOT, "target", "langgraph-venv")
PACKAGES = ["langgraph", "langgraph-checkpoint-sqlite"]


def ensure_venv():
    """Re-runs this script inside a venv that has LangGraph, creating it if needed."""
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    python = os.path.join(VENV, "bin", "python")
    if not os.path.exists(python):
        print(f"creating {VENV} and installing {', '.join(PACKAGES)} ...", file=sys.stderr)
        venv.create(VENV, with_pip=True)
        subprocess.check_call([python, "-m", "pip", "install", "-q", *PACKAGES])
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


def langgraph_version():
    from importlib.metadata import version

    return version("langgraph")


# ---------------------------------------------------------------------------------------------
# LangGraph side


def build_chain(n):
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class S(TypedDict):
        x: int

    g = StateGraph(S)

    def inc(state):
        return {"x": state["x"] + 1}

    for i in range(n):
        g.add_node(f"n{i}", inc)
    g.add_edge(START, "n0")
    for i in range(1, n):
        g.add_edge(f"n{i - 1}", f"n{i}")
    g.add_edge(f"n{n - 1}", END)
    return g


def build_fan(n):
    import operator
    from typing import Annotated, TypedDict

    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Send

    class S(TypedDict):
        out: Annotated[list, operator.add]
        total: Annotated[int, operator.add]

    class Item(TypedDict):
        item: int

    def work(item: Item):
        return {"out": [item["item"] * 2], "total": item["item"]}

    def dispatch(state):
        return [Send("work", {"item": i}) for i in range(n)]

    g = StateGraph(S)
    g.add_node("work", work)
    g.add_conditional_edges(START, dispatch, ["work"])
    g.add_edge("work", END)
    return g


def time_langgraph(shape, n, mode, reps, tmpdir):
    """Median seconds of one whole run (graph compiled once, a new thread per run)."""
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.checkpoint.sqlite import SqliteSaver
    import sqlite3

    g = build_chain(n) if shape == "chain" else build_fan(n)
    conn = None
    if mode == "none":
        app = g.compile()
    elif mode == "memory":
        app = g.compile(checkpointer=InMemorySaver())
    else:
        conn = sqlite3.connect(os.path.join(tmpdir, f"lg-{shape}-{n}.db"), check_same_thread=False)
        app = g.compile(checkpointer=SqliteSaver(conn))
    first = {"x": 0} if shape == "chain" else {"out": [], "total": 0}
    times = []
    for r in range(reps + 1):
        cfg = {"recursion_limit": n + 10, "configurable": {"thread_id": f"t{time.time_ns()}-{r}"}}
        start = time.perf_counter()
        # With a checkpointer, each step's checkpoint is written before the next step starts
        # (`durability="sync"`), as `ao` does; LangGraph's default ("async") writes it in the
        # background while the next step runs.
        out = app.invoke(first, cfg, durability="sync") if mode != "none" else app.invoke(first, cfg)
        elapsed = time.perf_counter() - start
        if shape == "chain":
            assert out["x"] == n, out
        else:
            assert len(out["out"]) == n and out["total"] == n * (n - 1) // 2, out
        if r > 0:  # the first run warms caches
            times.append(elapsed)
    if conn is not None:
        conn.close()
    return statistics.median(times)


# ---------------------------------------------------------------------------------------------
# ao side


def ao_command(args):
    if args.ao_bin:
        return [args.ao_bin]
    return ["cargo", "run", "-q", "--release", "-p", "ao-graph", "--example", "shapes", "--"]


def time_ao(args, shape, n, durable, reps):
    cmd = ao_command(args) + [shape, str(n), "--reps", str(reps), "--json"]
    if durable:
        cmd.append("--durable")
    out = subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["median_s"]


# ---------------------------------------------------------------------------------------------


def main():
    ensure_venv()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    p.add_argument("--chain", type=int, default=1000, help="chain length (default 1000)")
    p.add_argument("--fan", type=int, default=100, help="fan-out width (default 100)")
    p.add_argument("--reps", type=int, default=5, help="runs per measurement (default 5)")
    p.add_argument("--ao-bin", help="the `shapes` example binary (default: cargo run --release)")
    p.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = p.parse_args()

    if not args.ao_bin:
        # Build once, so that compile time never lands in a measurement.
        subprocess.run(ao_command(args)[:-1] + ["--", "--help"], cwd=ROOT, check=True,
                       capture_output=True)

    samples = {}

    def add(key, seconds):
        samples.setdefault(key, []).append(seconds)

    with tempfile.TemporaryDirectory() as tmp:
        for rnd in range(args.rounds):
            print(f"round {rnd + 1}/{args.rounds}", file=sys.stderr)
            n = args.chain
            add(("chain", "ao", "memory"), time_ao(args, "chain", n, False, args.reps))
            add(("chain", "ao", "durable"), time_ao(args, "chain", n, True, args.reps))
            add(("chain", "langgraph", "none"), time_langgraph("chain", n, "none", args.reps, tmp))
            add(("chain", "langgraph", "memory"), time_langgraph("chain", n, "memory", args.reps, tmp))
            add(("chain", "langgraph", "sqlite"),
                time_langgraph("chain", n, "sqlite", max(1, args.reps // 2), tmp))
            n = args.fan
            add(("fan", "ao", "memory"), time_ao(args, "fan", n, False, args.reps * 4))
            add(("fan", "ao", "durable"), time_ao(args, "fan", n, True, args.reps * 4))
            add(("fan", "langgraph", "none"), time_langgraph("fan", n, "none", args.reps * 4, tmp))
            add(("fan", "langgraph", "memory"), time_langgraph("fan", n, "memory", args.reps * 4, tmp))
            add(("fan", "langgraph", "sqlite"), time_langgraph("fan", n, "sqlite", args.reps, tmp))

    med = {k: statistics.median(v) for k, v in samples.items()}
    chain_step = {k[1:]: v / args.chain for k, v in med.items() if k[0] == "chain"}
    fan = {k[1:]: v for k, v in med.items() if k[0] == "fan"}

    def us(s):
        return f"{s * 1e6:,.1f} µs"

    print(f"LangGraph {langgraph_version()}, Python {sys.version.split()[0]}; "
          f"{args.rounds} rounds, medians")
    print()
    print(f"| shape | ao in memory | ao durable | LangGraph (no checkpointer) | LangGraph InMemorySaver | LangGraph SqliteSaver |")
    print("|---|---|---|---|---|---|")
    for name, table in ((f"chain step (of {args.chain})", chain_step), (f"fan-out of {args.fan}", fan)):
        print(f"| {name} | {us(table[('ao', 'memory')])} | {us(table[('ao', 'durable')])} | "
              f"{us(table[('langgraph', 'none')])} | {us(table[('langgraph', 'memory')])} | "
              f"{us(table[('langgraph', 'sqlite')])} |")
    print()
    ratios = [
        ("durable chain step / LangGraph in-memory step (no checkpointer)",
         chain_step[("ao", "durable")] / chain_step[("langgraph", "none")], 0.2),
        ("durable chain step / LangGraph InMemorySaver step",
         chain_step[("ao", "durable")] / chain_step[("langgraph", "memory")], 0.2),
        ("durable chain step / LangGraph SqliteSaver step",
         chain_step[("ao", "durable")] / chain_step[("langgraph", "sqlite")], 0.05),
        (f"durable fan-out of {args.fan} / LangGraph in-memory fan-out (no checkpointer)",
         fan[("ao", "durable")] / fan[("langgraph", "none")], 0.05),
        (f"durable fan-out of {args.fan} / LangGraph InMemorySaver fan-out",
         fan[("ao", "durable")] / fan[("langgraph", "memory")], 0.05),
    ]
    print("| ratio | measured | target | met |")
    print("|---|---|---|---|")
    for name, r, target in ratios:
        print(f"| {name} | {r:.3f} | ≤ {target} | {'yes' if r <= target else 'no'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({
                "langgraph": langgraph_version(),
                "samples": {"/".join(k): v for k, v in samples.items()},
                "ratios": {name: r for name, r, _ in ratios},
            }, f, indent=2)


if __name__ == "__main__":
    main()
