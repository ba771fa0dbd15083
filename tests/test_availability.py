"""Opening hours → availability at an instant and over a week (Europe/Madrid, Spanish holidays)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from geo.core.availability import (
    HOURS_PER_WEEK,
    available_at,
    device_availability,
    local_instant,
    slice_label,
    week_in_words,
    week_start_of,
    weekly_availability,
)

MADRID = "Europe/Madrid"
MONDAY = dt.date(2026, 11, 23)
PHARMACY = "Mo-Fr 09:30-14:00,17:00-20:30; Sa 10:00-14:00; PH off"


def devices(*rows: dict[str, object]) -> gpd.GeoDataFrame:
    base = {"status": "active", "verification": "verified", "access": "yes", "is_mobile": False}
    return gpd.GeoDataFrame(
        [{"id": f"d{i}", **base, **row} for i, row in enumerate(rows)], geometry=[None] * len(rows)
    )


def one(hours: str | None) -> gpd.GeoDataFrame:
    return devices({"opening_hours": hours})


def week_for(frame: gpd.GeoDataFrame, day: dt.date) -> np.ndarray:
    return weekly_availability(device_availability(frame, timezone=MADRID), week_of=day).slices


def test_who_may_count() -> None:
    frame = devices(
        {"opening_hours": "24/7"},
        {"opening_hours": "24/7", "access": "customers"},
        {"opening_hours": "24/7", "access": "permissive"},
        {"opening_hours": "24/7", "access": "private"},
        {"opening_hours": "24/7", "access": "permit"},
        {"opening_hours": "24/7", "status": "out_of_service"},
        {"opening_hours": "24/7", "status": "removed"},
        {"opening_hours": "24/7", "verification": "rejected"},
        {"opening_hours": "24/7", "verification": "pending"},
        {"opening_hours": "24/7", "is_mobile": True},
    )
    availability = device_availability(frame, timezone=MADRID)
    # Pending (index 8): not verified by staff yet, so not usable.
    assert availability.eligible.tolist() == [
        True, True, True, False, False, False, False, False, False, False,
    ]  # fmt: skip


def test_pharmacy_hours_at_instants() -> None:
    availability = device_availability(devices({"opening_hours": PHARMACY}), timezone=MADRID)
    at = lambda hour, minute=0, day=MONDAY: dt.datetime.combine(day, dt.time(hour, minute))  # noqa: E731
    assert available_at(availability, at(10))[0]
    assert not available_at(availability, at(9, 29))[0]
    assert available_at(availability, at(9, 30))[0]
    assert not available_at(availability, at(15))[0]
    assert available_at(availability, at(20, 29))[0]
    assert not available_at(availability, at(22))[0]
    assert not available_at(availability, at(11, day=dt.date(2026, 11, 29)))[0]  # Sunday
    assert not available_at(availability, at(11, day=dt.date(2026, 12, 8)))[0]  # Inmaculada (PH)


def test_instants_without_zone_are_local_and_others_are_converted() -> None:
    availability = device_availability(
        devices({"opening_hours": "Mo 09:00-10:00"}), timezone=MADRID
    )
    assert available_at(availability, dt.datetime(2026, 11, 23, 9, 30))[0]
    utc = dt.datetime(2026, 11, 23, 8, 30, tzinfo=ZoneInfo("UTC"))  # 09:30 in Madrid (CET)
    assert available_at(availability, utc)[0]
    assert local_instant(utc, MADRID).hour == 9


def test_missing_and_unparseable_hours_are_reported_not_counted() -> None:
    frame = devices(
        {"opening_hours": None}, {"opening_hours": "de 9 a 14"}, {"opening_hours": "24/7"}
    )
    availability = device_availability(frame, timezone=MADRID)
    assert [issue.device_id for issue in availability.issues] == ["d0", "d1"]
    assert "no interpretable" in str(availability.issues[1])
    assert available_at(availability, dt.datetime(2026, 11, 23, 12)).tolist() == [
        False,
        False,
        True,
    ]
    optimistic = device_availability(frame, timezone=MADRID, assume_unknown_open=True)
    assert available_at(optimistic, dt.datetime(2026, 11, 23, 12)).tolist() == [True, True, True]


def test_weekly_slices_of_office_hours() -> None:
    availability = device_availability(
        devices({"opening_hours": "Mo-Fr 08:00-15:00"}), timezone=MADRID
    )
    week = weekly_availability(availability, week_of=dt.date(2026, 11, 25))
    assert week.week_start == dt.datetime(2026, 11, 23, tzinfo=ZoneInfo(MADRID))
    expected = np.zeros(HOURS_PER_WEEK, dtype=bool)
    for day in range(5):
        expected[day * 24 + 8 : day * 24 + 15] = True
    assert week.slices[0].tolist() == expected.tolist()
    assert not week.always[0]


def test_always_means_every_moment_including_holidays() -> None:
    frame = devices(
        {"opening_hours": "24/7"},
        {"opening_hours": "Mo-Su 00:00-24:00"},
        {"opening_hours": "24/7; PH off"},
        {"opening_hours": "Jun-Sep 24/7"},
    )
    week = weekly_availability(device_availability(frame, timezone=MADRID), week_of=MONDAY)
    assert week.always.tolist() == [True, True, False, False]
    assert week.slices[2].all()  # no holiday in that week, yet not always


def test_a_public_holiday_closes_its_slices() -> None:
    frame = devices({"opening_hours": "Mo-Fr 10:00-12:00; PH off"})
    week = weekly_availability(
        device_availability(frame, timezone=MADRID), week_of=dt.date(2026, 12, 8)
    )
    tuesday = 1  # 2026-12-08, Inmaculada Concepción
    assert not week.slices[0, tuesday * 24 + 10]
    assert week.slices[0, 10] and week.slices[0, 2 * 24 + 10]


def test_daylight_saving_week_keeps_wall_clock_hours() -> None:
    frame = devices({"opening_hours": "Su 01:00-04:00"})
    week = weekly_availability(
        device_availability(frame, timezone=MADRID), week_of=dt.date(2026, 10, 25)
    )
    sunday = 6 * 24
    assert week.slices[0, sunday + 1] and week.slices[0, sunday + 3]
    assert not week.slices[0, sunday + 4]


@settings(max_examples=60, deadline=None)
@given(slot=st.integers(min_value=0, max_value=HOURS_PER_WEEK - 1))
def test_a_weekly_slice_equals_the_instant_at_its_midpoint(slot: int) -> None:
    frame = devices(
        {"opening_hours": PHARMACY},
        {"opening_hours": "Mo-Fr 08:00-15:00"},
        {"opening_hours": "Sa,Su 10:00-13:30"},
        {"opening_hours": "24/7"},
    )
    availability = device_availability(frame, timezone=MADRID)
    week = weekly_availability(availability, week_of=MONDAY)
    day, hour = divmod(slot, 24)
    midpoint = dt.datetime.combine(MONDAY + dt.timedelta(days=day), dt.time(hour, 30))
    assert week.slices[:, slot].tolist() == available_at(availability, midpoint).tolist()


def test_labels_are_spanish() -> None:
    assert slice_label(0) == "lunes 00:00–01:00"
    assert slice_label(167) == "domingo 23:00–00:00"
    assert week_start_of(dt.date(2026, 11, 29), MADRID).date() == MONDAY


@pytest.mark.parametrize("text", ["24/7", PHARMACY])
def test_each_distinct_schedule_is_evaluated_once(text: str) -> None:
    frame = devices(*({"opening_hours": text} for _ in range(500)))
    week = weekly_availability(device_availability(frame, timezone=MADRID), week_of=MONDAY)
    assert (week.slices == week.slices[0]).all()


@pytest.mark.parametrize(
    ("hours", "week_of", "words"),
    [
        ("24/7", dt.date(2026, 11, 23), "abierto las 24 horas, todos los días"),
        (
            "Mo-Fr 09:30-14:00,17:00-20:30; Sa 10:00-14:00",
            dt.date(2026, 11, 23),
            "lunes a viernes 09:30–14:00 y 17:00–20:30; sábado 10:00–14:00; domingo cerrado",
        ),
        (
            "Sa,Su 10:00-14:00",
            dt.date(2026, 11, 23),
            "lunes a viernes cerrado; sábado y domingo 10:00–14:00",
        ),
        # Out of season, and the week of 8 December (a national holiday, a Tuesday, in 2026).
        ("Jun 15-Sep 15 11:00-21:00", dt.date(2026, 11, 23), "cerrado toda la semana"),
        (
            "Mo-Fr 09:00-18:00; PH off",
            dt.date(2026, 12, 9),
            "lunes 09:00–18:00; martes 8 (festivo): cerrado; miércoles a viernes 09:00–18:00; "
            "sábado y domingo cerrado",
        ),
        # Past midnight: each day shows its own hours.
        ("Mo-Su 20:00-02:00", dt.date(2026, 11, 23), "lunes a domingo 00:00–02:00 y 20:00–24:00"),
        # The week after the clocks go back (25 October 2026) and the week of the change itself.
        (
            "Mo-Fr 09:00-18:00",
            dt.date(2026, 10, 25),
            "lunes a viernes 09:00–18:00; sábado y domingo cerrado",
        ),
        ("Su 01:00-05:00", dt.date(2026, 10, 25), "lunes a sábado cerrado; domingo 01:00–05:00"),
        ("Su 01:00-05:00", dt.date(2026, 3, 29), "lunes a sábado cerrado; domingo 01:00–05:00"),
    ],
)
def test_week_in_words(hours: str, week_of: dt.date, words: str) -> None:
    assert week_in_words(hours, week_of=week_of, timezone="Europe/Madrid") == words


def test_week_in_words_refuses_invalid_hours() -> None:
    with pytest.raises(ValueError, match="horario no interpretable"):
        week_in_words("cuando abra", week_of=dt.date(2026, 11, 23), timezone="Europe/Madrid")
