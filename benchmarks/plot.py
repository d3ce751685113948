"""The converge benchmark's scale and RTT curves as one SVG, drawn by hand (no plotting library).

Left: seconds against the number of webhooks, one line per contender, phase and round-trip time.
Right: seconds against the round-trip time, one line per contender, phase and workload size.
Seconds are on a log scale (the floor's second and uri's minute share the axis); each point is the
median of its case's rounds, as the tables print it.

`benchmarks/run.py` calls `write_curves` once with its figures: a full run writes benchmarks/curves.svg,
the smoke run draws and checks the picture but writes none (so that `make test` keeps this code working
without touching the committed picture). By hand, from the figures of `run.py --json FILE`:

    python benchmarks/plot.py FILE [OUT.svg]
"""
from __future__ import annotations

import json
import math
import pathlib
import sys
from xml.etree import ElementTree
from xml.sax.saxutils import escape

CURVES = pathlib.Path(__file__).resolve().parent / "curves.svg"

# (contender, phase, label, colour): the lines drawn, in legend order; a contender absent from a run is left out.
SERIES = (
    ("role", "first", "role, first converge", "#3b5bdb"),
    ("role", "noop", "role, no-op", "#2b8a3e"),
    ("role", "change", "role, one change", "#12b886"),
    ("uri", "first", "uri baseline, first", "#e8590c"),
    ("uri", "noop", "uri baseline, no-op", "#c92a2a"),
    ("floor", "run", "floor (one debug task)", "#868e96"),
)
DASHES = ("", "7 4", "2 3", "10 3 2 3")
WIDTH = 1100
PANEL_W, PANEL_H = 430, 300
PANELS_TOP = 70
LEFT_X, RIGHT_X = 80, 610
FONT = 'font-family="DejaVu Sans, Verdana, sans-serif"'


def rows(converge: dict) -> list[dict]:
    """One row per (case, contender, phase) with its median seconds."""
    found = []
    for case in converge.values():
        for contender, phases in case["median"].items():
            for phase, measurement in phases.items():
                seconds = measurement.get("seconds")
                if isinstance(seconds, (int, float)) and seconds > 0:
                    found.append({"webhooks": case["webhooks"], "rtt_ms": case["rtt_ms"], "contender": contender,
                                  "phase": phase, "seconds": float(seconds)})
    return found


def curves(found: list[dict], x: str, split: str) -> list[tuple[str, str, str, list[tuple[float, float]]]]:
    """(label, colour, dash, points) per series and value of `split` (its dash), points sorted by `x`."""
    splits = split_values(found, split)
    drawn = []
    for contender, phase, label, colour in SERIES:
        for index, value in enumerate(splits):
            points = sorted((row[x], row["seconds"]) for row in found
                            if row["contender"] == contender and row["phase"] == phase and row[split] == value)
            if points:
                drawn.append((f"{label} @ {value:g}", colour, DASHES[index % len(DASHES)], points))
    return drawn


def split_values(found: list[dict], split: str) -> list[float]:
    return sorted({row[split] for row in found})


def log_ticks(low: float, high: float) -> list[float]:
    ticks = []
    for exponent in range(math.floor(math.log10(low)), math.ceil(math.log10(high)) + 1):
        for mantissa in (1, 2, 5):
            value = mantissa * 10 ** exponent
            if low <= value <= high:
                ticks.append(value)
    return ticks


def nice_below(value: float) -> float:
    """The largest 1, 2 or 5 times a power of ten at or below `value`."""
    exponent = math.floor(math.log10(value))
    return max(m * 10 ** exponent for m in (1, 2, 5) if m * 10 ** exponent <= value)


def nice_above(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above `value`."""
    exponent = math.floor(math.log10(value))
    return min(m * 10 ** e for e in (exponent, exponent + 1) for m in (1, 2, 5) if m * 10 ** e >= value)


def rounds_text(converge: dict) -> str:
    counts = sorted({len(runs) for case in converge.values() for runs in case.get("rounds_seconds", {}).values()})
    if not counts:
        return "median of each case's rounds"
    span = f"{counts[0]}" if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    return f"median of {span} round{'s' if counts[-1] > 1 else ''} per contender and case"


def tick_text(value: float) -> str:
    return f"{value:g}"


def panel(left: float, top: float, title: str, x_label: str, series, y_low: float, y_high: float) -> list[str]:
    xs = sorted({x for *_, points in series for x, _ in points}) or [0.0, 1.0]
    x_low, x_high = xs[0], xs[-1]
    if x_high == x_low:
        x_low, x_high = x_low - 1, x_high + 1
    pad = (x_high - x_low) * 0.06
    x_low, x_high = x_low - pad, x_high + pad

    def px(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * PANEL_W

    def py(y: float) -> float:
        return top + PANEL_H - (math.log10(y) - math.log10(y_low)) / (math.log10(y_high) - math.log10(y_low)) * PANEL_H

    out = [f'<text x="{left}" y="{top - 14}" font-size="15" font-weight="bold" {FONT}>{escape(title)}</text>',
           f'<rect x="{left}" y="{top}" width="{PANEL_W}" height="{PANEL_H}" fill="#fff" stroke="#ced4da"/>']
    for tick in log_ticks(y_low, y_high):
        y = py(tick)
        out.append(f'<line x1="{left}" x2="{left + PANEL_W}" y1="{y:.1f}" y2="{y:.1f}" stroke="#f1f3f5"/>')
        out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" {FONT}>'
                   f'{tick_text(tick)}</text>')
    for x in xs:
        out.append(f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{top}" y2="{top + PANEL_H}" stroke="#f1f3f5"/>')
        out.append(f'<text x="{px(x):.1f}" y="{top + PANEL_H + 16}" font-size="11" text-anchor="middle" {FONT}>'
                   f'{tick_text(x)}</text>')
    out.append(f'<text x="{left + PANEL_W / 2}" y="{top + PANEL_H + 34}" font-size="12" text-anchor="middle" {FONT}>'
               f'{escape(x_label)}</text>')
    out.append(f'<text x="{left - 50}" y="{top + PANEL_H / 2}" font-size="12" text-anchor="middle" {FONT} '
               f'transform="rotate(-90 {left - 50} {top + PANEL_H / 2})">seconds (log scale)</text>')
    for label, colour, dash, points in series:
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dashing}>'
                   f'<title>{escape(label)}</title></polyline>')
        for x, y in points:
            out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3.5" fill="{colour}">'
                       f'<title>{escape(label)}: {y:.2f} s at {x:g}</title></circle>')
    return out


def colour_legend(left: float, top: float, found: list[dict]) -> list[str]:
    """The series' colours, in columns of three, for the contenders and phases this run has."""
    present = [(label, colour) for contender, phase, label, colour in SERIES
               if any(r["contender"] == contender and r["phase"] == phase for r in found)]
    out = []
    for index, (label, colour) in enumerate(present):
        x, y = left + (index // 3) * 250, top + (index % 3) * 18
        out.append(f'<line x1="{x}" x2="{x + 26}" y1="{y}" y2="{y}" stroke="{colour}" stroke-width="3"/>')
        out.append(f'<text x="{x + 32}" y="{y + 4}" font-size="12" {FONT}>{escape(label)}</text>')
    return out


def dash_key(left: float, top: float, values: list[float], unit: str) -> list[str]:
    out = []
    for index, value in enumerate(values):
        x = left + index * 150
        dash = DASHES[index % len(DASHES)]
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{x}" x2="{x + 30}" y1="{top}" y2="{top}" stroke="#343a40" stroke-width="2"{dashing}/>')
        out.append(f'<text x="{x + 36}" y="{top + 4}" font-size="12" {FONT}>{escape(f"{value:g} {unit}")}</text>')
    return out


def svg(figures: dict) -> str:
    found = rows(figures.get("converge") or {})
    if not found:
        raise ValueError("no converge figures to draw (was the converge benchmark skipped?)")
    seconds = [row["seconds"] for row in found]
    y_low, y_high = nice_below(min(seconds)), nice_above(max(seconds))
    by_size = curves(found, "webhooks", "rtt_ms")
    by_rtt = curves(found, "rtt_ms", "webhooks")
    envs = sorted({case["envs"] for case in figures["converge"].values()})
    machine = figures.get("machine", {})
    loads = figures.get("load_average", {})
    caption = (f"ansible-playbook wall clock, {rounds_text(figures['converge'])}; {'/'.join(map(str, envs))} envs per "
               f"webhook; {machine.get('cpus', '?')} CPUs ({machine.get('cpu_model', '?')}), Python "
               f"{machine.get('python', '?')}, ansible-core {machine.get('ansible_core', '?')}.",
               f"Load average {loads.get('start', '?')} at the start, {loads.get('after_converge', '?')} after the "
               "converge runs: compare lines of one run, not these seconds with another machine's.")
    legend_top = PANELS_TOP + PANEL_H + 78
    height = legend_top + 3 * 18 + 50
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
           f'viewBox="0 0 {WIDTH} {height}">',
           f'<rect width="{WIDTH}" height="{height}" fill="#f8f9fa"/>',
           f'<text x="{LEFT_X}" y="28" font-size="18" font-weight="bold" {FONT}>make bench: how a converge grows '
           'with the workload and with the distance to the API</text>']
    out += panel(LEFT_X, PANELS_TOP, "Scale: seconds by webhooks", "webhooks", by_size, y_low, y_high)
    out += panel(RIGHT_X, PANELS_TOP, "RTT: seconds by round-trip time", "round-trip time to the API (ms)",
                 by_rtt, y_low, y_high)
    out += dash_key(LEFT_X, PANELS_TOP + PANEL_H + 52, split_values(found, "rtt_ms"), "ms RTT")
    out += dash_key(RIGHT_X, PANELS_TOP + PANEL_H + 52, split_values(found, "webhooks"), "webhooks")
    out += colour_legend(LEFT_X, legend_top, found)
    for index, line in enumerate(caption):
        out.append(f'<text x="{LEFT_X}" y="{height - 28 + index * 15}" font-size="11" fill="#495057" {FONT}>'
                   f'{escape(line)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def check_drawing(drawing: str, figures: dict) -> None:
    """The SVG is well-formed and draws every series of both panels, each point of it as a dot."""
    tree = ElementTree.fromstring(drawing)
    found = rows(figures["converge"])
    series = curves(found, "webhooks", "rtt_ms") + curves(found, "rtt_ms", "webhooks")
    svg_ns = "{http://www.w3.org/2000/svg}"
    lines = [line.findtext(svg_ns + "title") for line in tree.iter(svg_ns + "polyline")]
    dots = len(list(tree.iter(svg_ns + "circle")))
    expected_dots = sum(len(points) for *_ignored, points in series)
    if not series or lines != [label for label, *_ignored in series] or dots != expected_dots:
        raise ValueError(f"the picture draws {len(lines)} lines and {dots} points; the figures have {len(series)} "
                         f"series and {expected_dots} points")


def write_curves(figures: dict, smoke: bool, path: pathlib.Path | None = None) -> str:
    """Draws the curves into `path` (default benchmarks/curves.svg); a smoke run draws and checks them
    but writes nothing. Returns the line to print."""
    if not figures.get("converge"):
        return "Curves: not drawn (no converge figures in this run)"
    drawing = svg(figures)
    check_drawing(drawing, figures)  # also in the smoke run
    if smoke and path is None:
        return f"Curves: drawn ({len(drawing)} bytes of SVG; a smoke run writes no picture)"
    path = path or CURVES
    path.write_text(drawing, encoding="utf-8")
    return f"Curves: {path}"


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__, file=sys.stderr)
        return 2
    figures = json.loads(pathlib.Path(argv[0]).read_text(encoding="utf-8"))
    print(write_curves(figures, smoke=False, path=pathlib.Path(argv[1]) if len(argv) > 1 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
