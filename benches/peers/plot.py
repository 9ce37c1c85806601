#!/usr/bin/env python3
"""Turns benchmark output into one SVG bar chart (no dependencies).

    cargo bench -p stealpool-benches --bench peers
    python3 benches/peers/plot.py target/criterion docs/benchmarks.svg submit_1m spawn_tree join_fib latency

or, from the interleaved-rounds mode's markdown table (each library in its
own process; the figures README quotes):

    cargo bench -p stealpool-benches --bench peers -- --rounds 3 | tee rounds.txt
    python3 benches/peers/plot.py --rounds rounds.txt docs/benchmarks.svg submit_1m two_submitters ...

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


def read_rounds(path):
    """{workload: [(library, value, unit)]} from the rounds mode's table."""
    panels = {}
    header = None
    with open(path) as f:
        for line in f:
            if not line.startswith("|"):
                continue
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if cells[0] == "workload":
                header = cells
                continue
            if header is None or set(cells[0]) <= {"-", " "}:
                continue
            workload, unit = cells[0], cells[1]
            rows = []
            for library, cell in zip(header[2:], cells[2:]):
                if "/" in library:
                    break  # the ratio columns
                try:
                    rows.append((library, float(cell), unit))
                except ValueError:
                    continue  # "–": the library has no such workload
            rows.sort(key=lambda row: row[1])
            panels[workload] = rows
    return panels


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
        parts.append(f'<text x="10" y="{y}" font-weight="bold">{html.escape(group)} ({html.escape(rows[0][2])}, median)</text>')
        y += 10
        longest = max(value for _, value, _ in rows)
        for function, value, unit in rows:
            w = max(1.0, (width - left - right) * value / longest)
            colour = "#d9822b" if function.startswith("stealpool") else "#5b8fc9"
            parts.append(f'<text x="{left - 8}" y="{y + 13}" text-anchor="end">{html.escape(function)}</text>')
            parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
            label = human(value) if unit in ("ns/task", "per iter") else f"{value:.3g} {unit}"
            parts.append(f'<text x="{left + w + 6:.1f}" y="{y + 13}">{html.escape(label)}</text>')
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
    if argv[1] == "--rounds":
        if len(argv) < 4:
            print(__doc__, file=sys.stderr)
            return 2
        table, out, groups = argv[2], argv[3], argv[4:]
        found = read_rounds(table)
        panels = [(group, found.get(group, [])) for group in (groups or list(found))]
        return write_plot(panels, out, f"no rounds table in {table}")
    root, out, groups = argv[1], argv[2], argv[3:]
    if not groups:
        groups = sorted(g for g in os.listdir(root) if os.path.isdir(os.path.join(root, g)) and g != "report")
    panels = [(group, read_group(root, group)) for group in groups]
    return write_plot(panels, out, f"no criterion results under {root}")


def write_plot(panels, out, nothing):
    """Writes the SVG of `panels` to `out`; exit status 1 with `nothing`
    when no panel has a bar."""
    if not any(rows for _, rows in panels):
        print(nothing, file=sys.stderr)
        return 1
    title = os.environ.get("PLOT_TITLE", "stealpool vs peers (lower is better)")
    with open(out, "w") as f:
        f.write(render(panels, title))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
