"""A result trend as SVG geometry, computed on the server: no chart library, works without JavaScript.

The template draws what this returns; the page also shows the same values as a table, which is the
accessible alternative to the picture.
"""

import math
from dataclasses import dataclass
from decimal import Decimal

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


def trend_chart(observations) -> Chart | None:
    """Geometry for the numeric observations of one test, oldest first; None if fewer than one number."""
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

    points = [
        Point(x_at(t), y_at(v), f"{o.effective_at:%d %b %Y}: {o.display_value}", o.abnormal)
        for t, v, o in zip(times, values, numeric, strict=True)
    ]
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
