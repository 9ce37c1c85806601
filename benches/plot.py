#!/usr/bin/env python3
"""Turns criterion's output into one SVG bar chart (no dependencies).

    cargo bench --bench peers
    python3 benches/plot.py target/criterion docs/benchmarks.svg submit_1m spawn_tree join_fib latency

Reads `<criterion dir>/<group>/<function>[/<parameter>]/new/estimates.json` (the median)
and `benchmark.json` (the throughput, if any: then the bar is time per
element), one panel per group, one bar per function, shortest bar first.
Groups default to every group found.
"""

import html
import json
import os
import sys


def read_group(root, group):
    """[(function, median ns per element or per iteration, unit)] of a group."""
    rows = []
    base = os.path.join(root, group)
    for directory, _, files in sorted(os.walk(base)):
        if os.path.basename(directory) != "new" or "estimates.json" not in files:
            continue
        # `<group>/<function>[/<parameter>]/new`: name the bar after the rest.
        function = os.path.relpath(os.path.dirname(directory), base).replace(os.sep, "/")
        with open(os.path.join(directory, "estimates.json")) as f:
            median = json.load(f)["median"]["point_estimate"]
        per = 1
        bench = os.path.join(directory, "benchmark.json")
        if os.path.isfile(bench):
            with open(bench) as f:
                throughput = json.load(f).get("throughput") or {}
            per = throughput.get("Elements") or throughput.get("Bytes") or 1
        rows.append((function, median / per, "ns/task" if per > 1 else "per iter"))
    rows.sort(key=lambda row: row[1])
    return rows


def human(ns):
    """A duration in the unit that reads best."""
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def render(panels, title):
    width, bar_h, gap, left, right = 760, 18, 6, 170, 110
    y = 40
    parts = []
    for group, rows in panels:
        if not rows:
            continue
        parts.append(f'<text x="10" y="{y}" font-weight="bold">{html.escape(group)} ({rows[0][2]}, median)</text>')
        y += 10
        longest = max(value for _, value, _ in rows)
        for function, value, _ in rows:
            w = max(1.0, (width - left - right) * value / longest)
            colour = "#d9822b" if function.startswith("stealpool") else "#5b8fc9"
            parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{html.escape(function)}</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
            parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 13}">{html.escape(human(value))}</text>')
            y += bar_h + gap
        y += 28
    header = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" '
        f'font-family="sans-serif" font-size="12">'
        f'<rect width="100%" height="100%" fill="white"/>'
        f'<text x="10" y="20" font-size="14" font-weight="bold">{html.escape(title)}</text>'
    )
    return header + "".join(parts) + "</svg>\n"


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    root, out, groups = argv[1], argv[2], argv[3:]
    if not groups:
        groups = sorted(g for g in os.listdir(root) if os.path.isdir(os.path.join(root, g)) and g != "report")
    panels = [(group, read_group(root, group)) for group in groups]
    if not any(rows for _, rows in panels):
        print(f"no criterion results under {root}", file=sys.stderr)
        return 1
    title = os.environ.get("PLOT_TITLE", "stealpool vs peers (lower is better)")
    with open(out, "w") as f:
        f.write(render(panels, title))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
