import datetime
from decimal import Decimal
from types import SimpleNamespace

from patients.charts import HEIGHT, LEFT, TOP, trend_chart


def observation(year, value, low="20", high="41", flag=""):
    return SimpleNamespace(
        value=None if value is None else Decimal(value),
        effective_at=datetime.datetime(year, 1, 15, tzinfo=datetime.UTC),
        reference_low=Decimal(low),
        reference_high=Decimal(high),
        display_value=f"{value} mmol/mol",
        abnormal=bool(flag),
    )


def test_points_span_the_plot_oldest_left_and_higher_values_higher():
    chart = trend_chart([observation(2020, "30"), observation(2021, "50", flag="H"), observation(2022, "40")])
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs)
    assert xs[0] == LEFT and xs[-1] == chart.plot_right
    assert chart.points[1].y < chart.points[2].y < chart.points[0].y  # 50 above 40 above 30
    assert [p.abnormal for p in chart.points] == [False, True, False]
    assert all(TOP <= p.y <= HEIGHT for p in chart.points)


def test_axis_covers_values_and_reference_range():
    chart = trend_chart([observation(2020, "45"), observation(2021, "47")])
    labels = [float(t.label) for t in chart.y_ticks]
    assert min(labels) <= 20 and max(labels) >= 47
    top, bottom = chart.band
    assert top < bottom


def test_single_point_and_text_only_results():
    assert len(trend_chart([observation(2020, "30")]).points) == 1
    assert trend_chart([observation(2020, None)]) is None


def test_every_year_is_labelled_including_the_first_partial_one():
    chart = trend_chart([observation(2020, "30"), observation(2021, "35"), observation(2022, "40")])
    assert [t.label for t in chart.x_ticks] == ["2020", "2021", "2022"]
    assert chart.x_ticks[0].position == LEFT  # data starts mid-January: the tick sits on the first point
