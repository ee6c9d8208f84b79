"""Line charts drawn on the server: the geometry of an SVG the page's template writes out.

Kept to what a dashboard needs (one series over time, the previous period faint behind it,
a few gridlines): no script, no library in the browser, so the page works under a strict
Content-Security-Policy and prints well. Every chart's numbers are also shown in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 240
#: The phone-sized drawing, shown instead on narrow screens (same figures, fewer labels).
NARROW_WIDTH, NARROW_HEIGHT, NARROW_LABELS = 360, 220, 4
#: Room for the axis labels: left, right, top, bottom.
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 56, 12, 12, 28
#: At most this many labels along the time axis.
MAX_X_LABELS = 8


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class LineChart:
    """An SVG line chart's geometry; points are ``x,y`` pairs in the viewBox."""

    title: str
    width: int
    height: int
    current: str
    previous: str
    #: Gridlines with their value labels, bottom (0) to top.
    y_ticks: tuple[Tick, ...]
    x_ticks: tuple[Tick, ...]
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    #: The current series' last point, drawn as a dot so a one-point chart shows something.
    last: tuple[float, float] | None


def nice_ceiling(value: float) -> int:
    """The smallest of 1, 2, 5 x 10^n (n >= 0) that is at least ``value``; 1 for nothing."""
    if value <= 1:
        return 1
    scale = 1
    while True:
        for step in (1, 2, 5):
            if step * scale >= value:
                return step * scale
        scale *= 10


def line_chart(
    title: str,
    labels: Sequence[str],
    current: Sequence[float],
    previous: Sequence[float],
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    max_labels: int = MAX_X_LABELS,
) -> LineChart:
    """A chart of ``current`` (one value per label) over ``previous`` (the same number of
    values, the period before, drawn faint)."""
    if len(current) != len(labels) or len(previous) != len(labels):
        raise ValueError("a chart needs one current and one previous value per label")
    top = nice_ceiling(max([*current, *previous], default=0))
    left, right = PAD_LEFT, width - PAD_RIGHT
    upper, lower = PAD_TOP, height - PAD_BOTTOM
    count = len(labels)

    def x(index: int) -> float:
        if count == 1:
            return (left + right) / 2
        return round(left + (right - left) * index / (count - 1), 1)

    def y(value: float) -> float:
        return round(lower - (lower - upper) * value / top, 1)

    def path(values: Sequence[float]) -> str:
        return " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values))

    y_ticks = tuple(Tick(y(top * n / 4), _short(top * n / 4)) for n in range(5))
    step = max(1, -(-count // max_labels))
    x_ticks = tuple(Tick(x(i), labels[i]) for i in range(0, count, step))
    return LineChart(
        title=title,
        width=width,
        height=height,
        current=path(current),
        previous=path(previous),
        y_ticks=y_ticks,
        x_ticks=x_ticks,
        plot_left=left,
        plot_right=right,
        plot_top=upper,
        plot_bottom=lower,
        last=(x(count - 1), y(current[-1])) if count else None,
    )


def _short(value: float) -> str:
    """An axis label: 950, 1.5k, 2M."""
    for limit, suffix in ((1_000_000_000, "G"), (1_000_000, "M"), (1_000, "k")):
        if value >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"
