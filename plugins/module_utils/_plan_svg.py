# Copyright (c) teamllm.stack contributors
# Apache License 2.0 (see LICENSE)
"""The placement as an SVG picture: per host, one bar per GPU drawn to one GiB scale (ticks and
grid lines), one coloured segment per instance labelled with its model, quantization and size
(inside when it fits, else below the bar on a leader line), the reservation hatched, free
memory as grid. RAM of CPU-only hosts gets its own scale. Written by hand: no plotting library.

Private to the collection; standard library only.
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

GIB = 1024**3

# Colour-blind-safe palette (Okabe-Ito, then Tol's muted), assigned by sorted served name.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677",
           "#882255", "#AA4499")
TICK_STEPS_GIB = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
MAX_TICKS = 12

MARGIN = 16
BAR_H = 28
FONT = 12
SMALL = 11
ROW = 16  # height of a row of labels under a bar

# Widths of DejaVu Sans / Helvetica glyphs in em, rounded up, to decide whether a label fits.
_NARROW = set("ijlft.,:;'|!()[] ")
_WIDE = set("mwMW@%")


def text_width(text, size=FONT):
    """Width in px of ``text`` at ``size`` px, estimated a little generously."""
    em = 0.0
    for ch in str(text):
        if ch in _NARROW:
            em += 0.34
        elif ch in _WIDE:
            em += 0.9
        elif ch.isdigit():
            em += 0.64
        elif ch.isupper():
            em += 0.72
        else:
            em += 0.6
    return em * size * 1.05


def _gib(value):
    return f"{value / GIB:.1f}"


def _hosts(plan):
    return sorted((plan.get("placement") or {}).items())


def colours(plan):
    """``{served name: colour}``, by sorted served name."""
    names = sorted({i["name"] for _h, spec in _hosts(plan) for i in spec.get("instances", [])})
    return {name: PALETTE[n % len(PALETTE)] for n, name in enumerate(names)}


def _ink(fill):
    """Black or white text, whichever reads better on ``fill`` (#rrggbb)."""
    r, g, b = (int(fill[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return "#111" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "#fff"


def tick_step(largest_bytes):
    """GiB between ticks: the smallest step giving at most MAX_TICKS ticks."""
    gib = largest_bytes / GIB
    return next((s for s in TICK_STEPS_GIB if gib / s <= MAX_TICKS), TICK_STEPS_GIB[-1])


def used_bytes(inst, device):
    """What ``inst`` takes on ``device`` (a plan device: a GPU, or RAM)."""
    if device["kind"] == "cpu" or inst.get("device") == "cpu":
        return int(inst.get("ram_bytes") or 0)
    return int(inst["bytes_per_gpu"][inst["gpus"].index(device["index"])])


def segment_label(inst, used):
    """The label of one segment: served name, quantization, GiB on this device, and the split."""
    text = f"{inst['name']} · {inst['quantization']} · {_gib(used)} GiB"
    n = len(inst.get("gpus") or [])
    if n > 1:
        text += f" · {'TP' if inst.get('engine') == 'vllm' else 'split'} {n} GPUs"
    return text


class _Canvas:
    def __init__(self, width):
        self.width = width
        self.x0, self.x1 = MARGIN, width - MARGIN
        self.parts = []
        self.y = 0

    def text(self, x, y, text, cls=None, anchor=None, fill=None):
        attrs = f' class="{cls}"' if cls else ""
        attrs += f' text-anchor="{anchor}"' if anchor else ""
        attrs += f' style="fill:{fill}"' if fill else ""  # a fill attribute loses to the CSS
        self.parts.append(f'<text x="{x:.1f}" y="{y:.1f}"{attrs}>{escape(str(text))}</text>')

    def line(self, x1, y1, x2, y2, cls):
        self.parts.append(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" class="{cls}"/>')

    def axis(self, scale, step, length_bytes):
        """A row of tick labels in GiB (0, step, ...; the last one says "GiB"); the grid lines
        are drawn per bar."""
        y = self.y + 12
        gib = 0
        while gib * GIB <= length_bytes + 1:
            x = self.x0 + gib * GIB * scale
            label = f"{gib} GiB" if (gib + step) * GIB > length_bytes + 1 else str(gib)
            anchor = "end" if label.endswith("GiB") and x + text_width(label, SMALL) > self.x1 else "middle"
            self.text(x, y, label, "tick", anchor)
            gib += step
        self.y += 18


def _bar(c, device, instances, scale, step, colour_of):
    """One device: its caption, the bar with grid, segments, reservation, and the labels of
    segments too narrow for their own text."""
    total, reserved = device["memory_total"], device.get("reserved") or 0
    label = "RAM" if device["kind"] == "cpu" else f"GPU {device['index']}"
    name = "" if device["name"] == label else f" · {device['name']}"
    caption = (f"{label}{name} · {_gib(total)} GiB: {_gib(device['planned'])} planned, "
               f"{_gib(device['free'])} free, {_gib(reserved)} reserved")
    if device["kind"] == "cpu":
        caption += " (drawn to its own scale)"
    c.text(c.x0, c.y + 13, caption, "caption")
    c.y += 18
    if device["kind"] == "cpu":  # its own scale: tick labels above the bar
        c.axis(scale, step, total)
        c.y -= 4
    top = c.y
    length = total * scale
    c.parts.append(f'<rect x="{c.x0}" y="{top}" width="{length:.1f}" height="{BAR_H}" class="free"/>')
    gib = step
    while gib * GIB < total:
        x = c.x0 + gib * GIB * scale
        c.line(x, top, x, top + BAR_H, "grid")
        gib += step
    x = c.x0
    pending = []  # (segment centre, label, colour, group index) for labels placed below
    for inst in instances:
        used = used_bytes(inst, device)
        w = used * scale
        fill = colour_of[inst["name"]]
        text = segment_label(inst, used)
        tip = (f"{inst['id']}: {inst['name']} ({inst['model']}), {inst['engine']} "
               f"{inst['quantization']}, context {inst['context']} x {inst['parallel']}, "
               f"{_gib(used)} GiB here, port {inst['port']}")
        group = [f'<g class="segment" data-instance={quoteattr(inst["id"])}>',
                 f'<rect x="{x:.1f}" y="{top}" width="{w:.1f}" height="{BAR_H}" fill="{fill}" '
                 f'class="inst"><title>{escape(tip)}</title></rect>']
        short = f"{inst['name']} · {inst['quantization']}"
        for candidate in (text, short):
            if text_width(candidate, SMALL) + 8 <= w:
                group.append(f'<text x="{x + 4:.1f}" y="{top + BAR_H / 2 + 4:.1f}" class="in" '
                             f'style="fill:{_ink(fill)}">{escape(candidate)}</text>')
                if candidate != text:  # the size still shows, below
                    pending.append((x + w / 2, f"{_gib(used)} GiB", fill, len(c.parts)))
                break
        else:
            pending.append((x + w / 2, text, fill, len(c.parts)))
        group.append("</g>")
        c.parts.append("".join(group))
        x += w
    if reserved:
        rx = c.x0 + (total - reserved) * scale
        c.parts.append(f'<rect x="{rx:.1f}" y="{top}" width="{reserved * scale:.1f}" '
                       f'height="{BAR_H}" class="reserved"><title>reserved {_gib(reserved)} GiB'
                       '</title></rect>')
    free_w = max(0.0, (total - reserved) * scale - (x - c.x0))
    free_text = f"free {_gib(device['free'])} GiB"
    if device["free"] > 0 and text_width(free_text, SMALL) + 8 <= free_w:
        c.text(x + free_w / 2, top + BAR_H / 2 + 4, free_text, "freetext", "middle")
    c.y = top + BAR_H + 6
    _callouts(c, pending, top + BAR_H)


def _callouts(c, pending, bar_bottom):
    """Labels below the bar, each on a leader line from its segment. Placed from the right:
    a label goes one row below every leader that would cross it and below any label it would
    overlap, so no leader crosses a label (the rightmost segment's label is the top row)."""
    placed = []  # (start, end, row, leader x)
    for centre, text, fill, index in reversed(pending):
        w = text_width(text, SMALL) + 14  # swatch + gap
        start = max(c.x0, min(centre - 6, c.x1 - w))
        end = start + w
        row = max((r + 1 for _s, _e, r, x in placed if start - 4 <= x <= end + 4), default=0)
        while any(r == row and start < e + 10 and s0 < end + 10 for s0, e, r, _x in placed):
            row += 1
        placed.append((start, end, row, centre))
        y = c.y + 12 + row * ROW
        group = c.parts[index][: -len("</g>")]  # the segment's group takes its label
        group += (f'<polyline points="{centre:.1f},{bar_bottom - 3:.1f} {centre:.1f},{y - 4:.1f} '
                  f'{start + 4:.1f},{y - 4:.1f}" class="leader"/>'
                  f'<rect x="{start:.1f}" y="{y - 8:.1f}" width="8" height="8" fill="{fill}"/>'
                  f'<text x="{start + 12:.1f}" y="{y:.1f}" class="out">{escape(text)}</text></g>')
        c.parts[index] = group
    c.y += (max((r for _s, _e, r, _x in placed), default=-1) + 1) * ROW + 8


def svg(plan, width=1000, date=None):
    """The picture of ``plan`` (the placement's result) as an SVG document (a string)."""
    colour_of = colours(plan)
    c = _Canvas(width)
    bar_w = c.x1 - c.x0
    gpu_total = [d["memory_total"] for _h, s in _hosts(plan) for d in s.get("devices", [])
                 if d["kind"] == "gpu"]
    largest = max(gpu_total, default=GIB)
    scale = bar_w / largest
    step = tick_step(largest)
    instances = sum(len(s.get("instances", [])) for _h, s in _hosts(plan))
    title = "Model placement: GPU memory per model"
    sub = (f"solver {plan.get('solver', '?')} "
           f"({'proven optimal' if plan.get('optimal') else 'not proven optimal'}), "
           f"policy {plan.get('policy', '?')} · {instances} instance(s) on {len(_hosts(plan))} "
           f"host(s), {len(gpu_total)} GPU(s)")
    if plan.get("unplaced"):
        sub += f" · {len(plan['unplaced'])} model(s) did not fit"
    if date:
        sub += f" · {date}"
    c.text(c.x0, 24, title, "title")
    c.text(c.x0, 42, sub, "sub")
    c.y = 52
    if gpu_total:
        c.axis(scale, step, largest)
    for host, spec in _hosts(plan):
        c.y += 6
        address = spec.get("address")
        c.text(c.x0, c.y + 14, f"{host}" + (f" ({address})" if address and address != host else ""),
               "host")
        c.y += 20
        by_id = {i["id"]: i for i in spec.get("instances", [])}
        for device in spec.get("devices", []):
            placed = [by_id[i] for i in device.get("instances", []) if i in by_id]
            if device["kind"] == "cpu":
                own = bar_w / max(device["memory_total"], 1)
                _bar(c, device, placed, own, tick_step(device["memory_total"]), colour_of)
            else:
                _bar(c, device, placed, scale, step, colour_of)
        if not spec.get("devices"):
            c.text(c.x0, c.y + 12, "no GPU and no RAM offered to models", "caption")
            c.y += 18
    if gpu_total:
        c.axis(scale, step, largest)
    c.y += 8
    c.text(c.x0, c.y + 12, "Legend", "host")
    c.y += 20
    quant = {}
    for _h, spec in _hosts(plan):
        for i in spec.get("instances", []):
            quant.setdefault(i["name"], {"model": i["model"], "q": set(), "e": set(), "n": 0})
            entry = quant[i["name"]]
            entry["q"].add(i["quantization"])
            entry["e"].add(i["engine"])
            entry["n"] += 1
    for name, colour in sorted(colour_of.items()):
        e = quant[name]
        model = f" ({e['model']})" if e["model"] != name else ""
        c.parts.append(f'<rect x="{c.x0}" y="{c.y}" width="14" height="14" fill="{colour}"/>')
        c.text(c.x0 + 20, c.y + 11, f"{name}{model}: {', '.join(sorted(e['q']))}, "
               f"{', '.join(sorted(e['e']))}, {e['n']} instance(s)", "caption")
        c.y += 20
    c.parts.append(f'<rect x="{c.x0}" y="{c.y}" width="14" height="14" class="reserved"/>')
    c.text(c.x0 + 20, c.y + 11, "reserved: kept free on every GPU (reserve_gib)", "caption")
    c.y += 20
    c.parts.append(f'<rect x="{c.x0}" y="{c.y}" width="14" height="14" class="free"/>')
    c.text(c.x0 + 20, c.y + 11, "free: grid lines every "
           f"{step} GiB", "caption")
    height = int(c.y + 14 + MARGIN)
    style = (
        "<style>text{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;font-size:12px;fill:#222}"
        ".title{font-size:16px;font-weight:bold}.sub{fill:#444}"
        ".host{font-weight:bold;font-size:14px}.tick{font-size:11px;fill:#555}"
        ".in,.out{font-size:11px}.freetext{font-size:11px;fill:#666;font-style:italic;"
        "stroke:#fff;stroke-width:3px;paint-order:stroke}"
        ".free{fill:#fff;stroke:#777}.inst{stroke:#fff;stroke-width:1}"
        ".grid{stroke:#ccc;stroke-width:1}.leader{fill:none;stroke:#555;stroke-width:1}"
        ".reserved{fill:url(#hatch);stroke:#777}</style>"
    )
    defs = ('<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
            'patternTransform="rotate(45)"><rect width="6" height="6" fill="#eee"/>'
            '<line x1="0" y1="0" x2="0" y2="6" stroke="#999" stroke-width="2"/></pattern></defs>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img">'
        f"<title>{escape(title + ': ' + sub)}</title>{style}{defs}"
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" class="background"/>'
        + "".join(c.parts) + "</svg>\n"
    )
