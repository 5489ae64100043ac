"""A result trend as SVG geometry, computed on the server: no chart library, works without JavaScript.

The template draws what this returns; the page also shows the same values as a table, which is the
accessible alternative to the picture.
"""

import datetime
import math
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

WIDTH, HEIGHT = 640, 280
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40


@dataclass
class Point:
    x: float
    y: float
    label: str
    abnormal: bool


@dataclass
class Tick:
    position: float
    label: str


@dataclass
class Chart:
    width: int
    height: int
    points: list[Point]
    polyline: str
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    band: tuple[float, float] | None  # y of the reference range's top and bottom edges
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM

    @property
    def band_height(self):
        return self.band[1] - self.band[0] if self.band else 0


def _nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high == low:
        high, low = high + 1, low - 1
    raw = (high - low) / (count - 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = []
    value = start
    while value <= high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _label(observation) -> str:
    """A point's tooltip: its date as the page shows dates (Europe/London, not UTC), and its value."""
    return f"{timezone.localtime(observation.effective_at):%d %b %Y}: {observation.display_value}"


def _abnormal(observation) -> bool:
    return observation.abnormal


def trend_chart(observations, *, abnormal: Callable = _abnormal) -> Chart | None:
    """Geometry for the numeric observations of one test, oldest first; None if fewer than one number.

    `abnormal(observation)` says which points are drawn as abnormal (the results pages' own rule)."""
    numeric = [o for o in observations if o.value is not None]
    if not numeric:
        return None
    values = [float(o.value) for o in numeric]
    reference = [float(v) for o in numeric for v in (o.reference_low, o.reference_high) if v is not None]
    ticks = _nice_ticks(min(values + reference), max(values + reference))
    low, high = ticks[0], ticks[-1]
    times = [o.effective_at.timestamp() for o in numeric]
    first, last = min(times), max(times)
    span = (last - first) or 1.0
    plot_width, plot_height = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_at(timestamp):
        return round(LEFT + (timestamp - first) / span * plot_width if last > first else LEFT + plot_width / 2, 1)

    def y_at(value):
        return round(TOP + (high - value) / (high - low) * plot_height, 1)

    points = [Point(x_at(t), y_at(v), _label(o), abnormal(o)) for t, v, o in zip(times, values, numeric, strict=True)]
    years = sorted({o.effective_at.year for o in numeric})
    step = max(1, len(years) // 6)
    # A tick per year (thinned to about six), at 1 January or, for the first year, at the first result.
    x_ticks = [
        Tick(x_at(max(first, numeric[0].effective_at.replace(year=year, month=1, day=1).timestamp())), str(year))
        for year in years[::step]
    ]
    band = None
    latest = numeric[-1]
    if latest.reference_low is not None and latest.reference_high is not None:
        band = (y_at(float(latest.reference_high)), y_at(float(latest.reference_low)))
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        points=points,
        polyline=" ".join(f"{p.x},{p.y}" for p in points),
        y_ticks=[Tick(y_at(t), f"{Decimal(str(t)).normalize():f}") for t in ticks],
        x_ticks=x_ticks,
        band=band,
    )


# Two tests on one time axis (eGFR with creatinine): each has its own scale, on its own side, and its own marker
# and line, so that neither is told apart by colour alone. Room above the plot for the two axes' titles.
PAIR_LEFT, PAIR_RIGHT, PAIR_TOP = 56, 56, 48


@dataclass
class Series:
    side: str  # "left" or "right": the axis whose scale it is drawn to
    marker: str  # "circle" or "square"
    points: list[Point]
    polyline: str
    ticks: list[Tick]


@dataclass
class PairChart:
    width: int
    height: int
    first: Series
    second: Series
    x_ticks: list[Tick]
    start: datetime.datetime  # the first and last result of either test
    end: datetime.datetime
    plot_left: int = PAIR_LEFT
    plot_right: int = WIDTH - PAIR_RIGHT
    plot_top: int = PAIR_TOP
    plot_bottom: int = HEIGHT - BOTTOM


def _year_ticks(moments, x_at) -> list[Tick]:
    """A tick per year (thinned to about six), at 1 January or, for the first year, at the first moment."""
    first = min(moments)
    years = sorted({moment.year for moment in moments})
    step = max(1, len(years) // 6)
    return [
        Tick(x_at(max(first, first.replace(year=year, month=1, day=1)).timestamp()), str(year))
        for year in years[::step]
    ]


def pair_chart(first, second, *, abnormal: Callable = _abnormal) -> PairChart | None:
    """Geometry for two tests' dated numeric observations (each oldest first) on one time axis, the first drawn
    to the left axis's scale, the second to the right's; None unless each has a number to draw.

    No reference band: two ranges on two scales would read as one. The page's table gives each range."""
    numeric = [[o for o in observations if o.value is not None] for observations in (first, second)]
    if not all(numeric):
        return None
    moments = [o.effective_at for series in numeric for o in series]
    start, end = min(moments).timestamp(), max(moments).timestamp()
    span = (end - start) or 1.0
    plot_left, plot_right = PAIR_LEFT, WIDTH - PAIR_RIGHT
    plot_top, plot_bottom = PAIR_TOP, HEIGHT - BOTTOM

    def x_at(timestamp):
        if end == start:
            return round((plot_left + plot_right) / 2, 1)
        return round(plot_left + (timestamp - start) / span * (plot_right - plot_left), 1)

    def series(observations, side, marker):
        values = [float(o.value) for o in observations]
        ticks = _nice_ticks(min(values), max(values))
        low, high = ticks[0], ticks[-1]

        def y_at(value):
            return round(plot_top + (high - value) / (high - low) * (plot_bottom - plot_top), 1)

        points = [
            Point(x_at(o.effective_at.timestamp()), y_at(v), _label(o), abnormal(o))
            for v, o in zip(values, observations, strict=True)
        ]
        return Series(
            side=side,
            marker=marker,
            points=points,
            polyline=" ".join(f"{p.x},{p.y}" for p in points),
            ticks=[Tick(y_at(t), f"{Decimal(str(t)).normalize():f}") for t in ticks],
        )

    return PairChart(
        width=WIDTH,
        height=HEIGHT,
        first=series(numeric[0], "left", "circle"),
        second=series(numeric[1], "right", "square"),
        x_ticks=_year_ticks(moments, x_at),
        start=min(moments),
        end=max(moments),
    )
