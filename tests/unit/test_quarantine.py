"""What the quarantine keeps of an error, what it sets aside, and how it is counted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from api.metrics import Metrics
from api.rejections import MalformedBody
from events.errors import CheckpointMoved, DatabaseRefused, DatabaseUnavailable, DataRefused
from events.quarantine import MAX_ERROR, error_text, sets_aside
from events.times import read_time, shifted


def raised(exc: Exception) -> Exception:
    try:
        raise exc
    except Exception as caught:  # the traceback is what is under test
        return caught


def test_the_error_kept_is_its_type_first_line_and_place_bounded_whatever_the_message() -> None:
    text = error_text(raised(ValueError("first line " + "x" * 10_000 + "\nsecond line")))
    assert len(text) <= MAX_ERROR
    assert text.startswith("ValueError: first line x")
    assert text.endswith("in raised)")
    assert "second line" not in text


def test_an_error_without_a_message_is_kept_by_its_type() -> None:
    assert error_text(OverflowError()) == "OverflowError"


@pytest.mark.parametrize(
    ("exc", "aside"),
    [
        (OverflowError("date value out of range"), True),
        (KeyError("x"), True),
        (DataRefused("CheckViolation: ..."), True),
        (DatabaseUnavailable("lost"), False),
        (CheckpointMoved("moved"), False),
        (DatabaseRefused("permission denied"), False),
        (MalformedBody("no"), False),
    ],
)
def test_only_errors_the_event_itself_causes_set_it_aside(exc: Exception, aside: bool) -> None:
    assert sets_aside(exc) is aside


def test_every_registered_consumer_has_a_quarantine_series_from_the_start() -> None:
    metrics = Metrics()
    metrics.register_consumers(["projection.orders", "policy.countdown"])
    text = metrics.render([], {"policy.countdown": 2, "exporter.bigquery": 0}).decode()
    assert 'hookledger_quarantined_events{consumer="projection.orders"} 0.0' in text
    assert 'hookledger_quarantined_events{consumer="policy.countdown"} 2.0' in text
    assert 'hookledger_quarantined_events{consumer="exporter.bigquery"} 0.0' in text
    assert "hookledger_quarantined_events" not in metrics.render([]).decode()


@pytest.mark.parametrize(
    ("value", "readable"),
    [("2026-05-01T00:00:00Z", True), ("9999-12-31T23:59:59Z", True), ("soon", False),
     (float("nan"), True), (float("inf"), True), (10**4000, True), (None, False)],
)  # fmt: skip
def test_reading_a_time_never_raises_and_tells_unreadable_from_out_of_range(
    value: object, readable: bool
) -> None:
    moment, was_readable = read_time(value)
    assert was_readable is readable
    assert moment is None or moment.year == 2026


def test_adding_a_duration_holds_at_the_ends_of_time_instead_of_overflowing() -> None:
    late = datetime(9999, 12, 31, tzinfo=UTC)
    assert shifted(late, timedelta(days=2)) == datetime.max.replace(tzinfo=UTC)
    assert shifted(late, -timedelta(days=10**6)).year < 9999
    early = datetime(1, 1, 2, tzinfo=UTC)
    assert shifted(early, -timedelta(days=2)) == datetime.min.replace(tzinfo=UTC)
