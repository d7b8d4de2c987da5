"""Draw the fleet dashboard as one PNG with matplotlib's Agg canvas (no pyplot, no display).

One row per metric, so a reader compares the last hours (left) with the last days (middle) on
the same line, and the newest hour's positions on the right. Hours or days without data are
gaps on a time axis, never silently closed up; an empty warehouse gives a dashboard that says so.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pyarrow as pa
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, DateFormatter, DayLocator
from matplotlib.figure import Figure, SubFigure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter
from PIL import Image

from lakehouse.defs.dashboard.series import FleetSeries

WIDTH_IN, HEIGHT_IN, DPI = 16.0, 10.0, 100
SIZE_PX = (int(WIDTH_IN * DPI), int(HEIGHT_IN * DPI))
BASE_FONT = 10.5

# (column, panel title, y-axis label, colour, bars?)
METRICS = (
    ("total_distance", "Fleet mileage", "km", "#1f77b4", True),
    ("vehicles", "Active vehicles", "vehicles", "#2ca02c", False),
    ("avg_speed", "Average speed (valid reports)", "km/h", "#ff7f0e", False),
    ("invalid_point_share", "Invalid-location share", "% of reports", "#d62728", False),
)
# Steps in minutes: numpy truncates a timedelta64 times a fraction to whole units.
HOUR = np.timedelta64(60, "m")
DAY = np.timedelta64(24 * 60, "m")
# Tick units for counts and kilometres, so a fleet of any size keeps short labels.
UNITS = ((1e9, "G"), (1e6, "M"), (1e3, "k"))
# A panel spans this many steps at least, so one hour is not drawn as a panel-wide bar.
MIN_STEPS_SHOWN = {"hour": 6, "day": 3}


def render_dashboard(series: FleetSeries) -> bytes:
    """The dashboard of ``series`` as PNG bytes, ``SIZE_PX`` pixels."""
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    fig.set_facecolor("white")
    fig.suptitle(_headline(series), fontsize=17, fontweight="bold")
    hourly_fig, daily_fig, map_fig = fig.subfigures(1, 3, width_ratios=[1.4, 0.95, 1.45])
    _time_panels(hourly_fig, series.hourly, "hour", HOUR, _hourly_heading(series.hourly))
    _time_panels(daily_fig, series.daily, "day", DAY, _daily_heading(series.daily))
    _map_panel(map_fig, series)
    return _compact_png(fig)


def _compact_png(fig: Figure) -> bytes:
    """The figure as a 256-colour PNG: a third of the RGBA size (it is embedded in metadata),
    and a chart has few colours, so nothing visible is lost."""
    rendered = io.BytesIO()
    fig.savefig(rendered, format="png", dpi=DPI)
    rendered.seek(0)
    with Image.open(rendered) as image:
        # Max-coverage keeps even a few pixels' colour (a lone marker) exact; median cut does not.
        palette = image.convert("RGB").quantize(
            colors=256, method=Image.Quantize.MAXCOVERAGE, dither=Image.Dither.NONE
        )
    compact = io.BytesIO()
    palette.save(compact, format="PNG", optimize=True)
    return compact.getvalue()


def _headline(series: FleetSeries) -> str:
    if series.empty:
        return "Fleet dashboard: no data in the warehouse yet"
    if series.hourly.num_rows:
        newest = series.hourly.column("stat_hour")[-1].as_py()
        return f"Fleet dashboard, data up to {newest}:59 UTC"
    return f"Fleet dashboard, days up to {series.daily.column('stat_date')[-1].as_py()}"


def _hourly_heading(hourly: pa.Table) -> str:
    if not hourly.num_rows:
        return "Per hour: no fleet KPI hours yet"
    first, last = (hourly.column("stat_hour")[i].as_py() for i in (0, -1))
    return f"Per hour, newest {hourly.num_rows} with data (UTC)\n{first}:00 to {last}:59"


def _daily_heading(daily: pa.Table) -> str:
    if not daily.num_rows:
        return "Per day: no daily statistics yet"
    first, last = (daily.column("stat_date")[i].as_py() for i in (0, -1))
    return f"Per day, newest {daily.num_rows} with data (UTC)\n{first} to {last}"


def _time_panels(
    sub: SubFigure, table: pa.Table, time_column: str, step: np.timedelta64, heading: str
) -> None:
    """One panel per metric, sharing the time axis; a gap in time stays a gap."""
    sub.suptitle(heading, fontsize=12.5)
    axes = sub.subplots(len(METRICS), 1, sharex=True)
    times = _to_datetime64(table.column(time_column)) if table.num_rows else None
    per = "hour" if step == HOUR else "day"
    for ax, (column, title, unit, colour, bars) in zip(axes, METRICS, strict=True):
        ax.set_title(
            f"{title} per {per}" if column != "invalid_point_share" else title,
            fontsize=BASE_FONT + 0.5,
            loc="left",
        )
        ax.set_ylabel(unit, fontsize=BASE_FONT)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(labelsize=BASE_FONT - 1)
        ax.spines[["top", "right"]].set_visible(False)
        if times is None:
            _say(ax, "no data")
            continue
        values = _to_float(table.column(column))
        if bars:
            ax.bar(times, values, width=_fraction(step, 0.8), color=colour, align="center")
        else:
            ax.plot(
                *_with_gaps(times, values, step),
                color=colour,
                linewidth=1.6,
                marker="o",
                markersize=3.5 if step == HOUR else 5,
            )
        top = _top(values, column)
        ax.yaxis.set_major_formatter(_y_formatter(column, top))
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=column == "vehicles"))
        ax.set_ylim(bottom=0, top=top)
    if times is not None:
        bottom = axes[-1]
        if step == HOUR:
            locator = AutoDateLocator(minticks=4, maxticks=8)
            bottom.xaxis.set_major_locator(locator)
            bottom.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=False))
        else:
            span_days = int((times[-1] - times[0]) / DAY) + 1
            bottom.xaxis.set_major_locator(DayLocator(interval=max(1, math.ceil(span_days / 7))))
            bottom.xaxis.set_major_formatter(DateFormatter("%b %d"))
        first = min(times[0], times[-1] - step * (MIN_STEPS_SHOWN[per] - 1))
        pad = _fraction(step, 0.6)
        bottom.set_xlim(first - pad, times[-1] + pad)


def _map_panel(sub: SubFigure, series: FleetSeries) -> None:
    """The newest hour's valid positions coloured by speed, and its figures in words."""
    sub.suptitle("Newest hour: where the fleet was", fontsize=12.5)
    ax = sub.subplots()
    ax.tick_params(labelsize=BASE_FONT - 1)
    positions = series.positions
    if positions.num_rows:
        lng, lat, speed = (_to_float(positions.column(c)) for c in ("lng", "lat", "speed"))
        step, top = _speed_bands(speed)
        bands = colormaps["viridis"].resampled(round(top / step))
        dots = ax.scatter(
            lng,
            lat,
            c=speed,
            s=2.5,
            cmap=bands,
            vmin=0,
            vmax=top,
            alpha=0.75,
            linewidths=0,
            rasterized=True,
        )
        # An inset, so the colour bar keeps to the map's own box whatever its aspect.
        bar = sub.colorbar(
            dots,
            cax=ax.inset_axes((1.03, 0.0, 0.035, 1.0)),
            ticks=np.arange(0, top + step, step),
            extend="max" if float(np.max(speed)) > top else "neither",
        )
        bar.set_label("speed (km/h)", fontsize=BASE_FONT)
        bar.ax.tick_params(labelsize=BASE_FONT - 1)
        # Degrees of longitude shrink with latitude: keep a kilometre a kilometre both ways.
        ax.set_aspect(1 / max(math.cos(math.radians(float(np.median(lat)))), 0.1), anchor="N")
        ax.set_xlabel("longitude (°E)", fontsize=BASE_FONT)
        ax.set_ylabel("latitude (°N)", fontsize=BASE_FONT)
        ax.grid(alpha=0.25)
        shown = (
            f"all {positions.num_rows:,} shown"
            if positions.num_rows == series.valid_positions
            else f"{positions.num_rows:,} of {series.valid_positions:,} shown (uniform sample)"
        )
        ax.set_title(
            f"Valid positions, {series.positions_hour}:00 to :59 UTC\n{shown}",
            fontsize=BASE_FONT + 0.5,
        )
    else:
        _say(ax, "no valid positions in the newest hour" if series.positions_hour else "no data")
    # Under the map's own box (the layout makes room for it), whatever the map's aspect.
    ax.annotate(
        _summary(series),
        xy=(0, 0),
        xycoords="axes fraction",
        xytext=(0, -48),
        textcoords="offset points",
        va="top",
        ha="left",
        fontsize=BASE_FONT + 1.5,
        linespacing=1.6,
        annotation_clip=False,
    )


def _speed_bands(speed: np.ndarray) -> tuple[float, float]:
    """Colour bands of 20 km/h (50 past 200) up to the 99th percentile: a few outliers never
    wash out the colours of the rest."""
    p99 = float(np.percentile(speed, 99))
    step = 20.0 if p99 <= 200 else 50.0
    return step, max(step, math.ceil(p99 / step) * step)


def _summary(series: FleetSeries) -> str:
    """The newest hour and day in figures, for the reader who wants numbers, not shapes."""
    lines = []
    for label, table, key in (
        ("Newest hour", series.hourly, "stat_hour"),
        ("Newest day", series.daily, "stat_date"),
    ):
        if not table.num_rows:
            lines.append(f"{label}: none yet")
            continue
        row = {name: table.column(name)[-1].as_py() for name in table.column_names}
        lines.append(
            f"{label} {row[key]}: {_maybe(row['vehicles'], '{:,}')} vehicles, "
            f"{_maybe(row['total_distance'], '{:,.0f}')} km\n"
            f"    mean speed {_maybe(row['avg_speed'], '{:.1f} km/h')}, "
            f"invalid locations {_maybe(row['invalid_point_share'], '{:.1%}')}"
        )
    if series.empty:
        lines.append("Run the hourly job (and the nightly job) to fill the warehouse.")
    return "\n".join(lines)


def _say(ax: Axes, message: str) -> None:
    ax.text(
        0.5,
        0.5,
        message,
        ha="center",
        va="center",
        fontsize=BASE_FONT + 1,
        color="0.4",
        transform=ax.transAxes,
    )
    ax.set_xticks([])
    ax.set_yticks([])


def _with_gaps(
    times: np.ndarray, values: np.ndarray, step: np.timedelta64
) -> tuple[np.ndarray, np.ndarray]:
    """Insert a break (NaN) wherever consecutive points are more than one step apart."""
    if len(times) < 2:
        return times, values
    breaks = np.flatnonzero(np.diff(times) > step) + 1
    gap_times = times[breaks - 1] + step
    return np.insert(times, breaks, gap_times), np.insert(values, breaks, np.nan)


def _fraction(step: np.timedelta64, share: float) -> np.timedelta64:
    return np.timedelta64(round(step.astype(int) * share), "m")


def _to_datetime64(column: pa.ChunkedArray) -> np.ndarray:
    return column.to_numpy().astype("datetime64[m]")


def _to_float(column: pa.ChunkedArray) -> np.ndarray:
    """Floats for plotting, NULL as NaN (a missing point, not a zero)."""
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=float)


def _top(values: np.ndarray, column: str) -> float:
    finite = values[np.isfinite(values)]
    peak = float(finite.max()) if finite.size else 0.0
    if column == "invalid_point_share":
        return max(peak * 1.3, 0.01)
    return max(peak * 1.15, 1.0)


def _y_formatter(column: str, top: float) -> FuncFormatter | PercentFormatter:
    """Percentages for shares; otherwise one unit (k, M, G) for every tick of the axis."""
    if column == "invalid_point_share":
        return PercentFormatter(xmax=1.0, decimals=None)
    unit, suffix = next(((u, x) for u, x in UNITS if top >= 1.2 * u), (1.0, ""))
    return FuncFormatter(lambda value, _: f"{value / unit:,.4g}{suffix}" if value else "0")


def _maybe(value: float | None, template: str) -> str:
    """A figure, or "n/a" for NULL (no valid location in the hour, no report at all)."""
    return "n/a" if value is None else template.format(value)
