"""The progress display of long jobs: plain lines off a terminal, a bar on one."""

from __future__ import annotations

import io

from hookledger.progress import PlainProgress, progress


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_progress_prints_a_line_now_and_then_with_rate_and_time_left() -> None:
    out, clock = io.StringIO(), Clock()
    bar = PlainProgress("export", 1000, out, every=5.0, clock=clock)
    clock.now += 2
    bar.advance(100)
    assert out.getvalue() == ""
    clock.now += 3
    bar.advance(150)
    assert out.getvalue() == "export: 250/1,000 events (25%), 50 events/s, 15 s left\n"


def test_plain_progress_without_a_total_counts_events() -> None:
    out, clock = io.StringIO(), Clock()
    bar = PlainProgress("replay", None, out, clock=clock)
    clock.now += 10
    bar.advance(2500)
    assert out.getvalue() == "replay: 2,500 events, 250 events/s\n"


def test_off_a_terminal_the_last_line_says_where_the_job_ended() -> None:
    out = io.StringIO()
    with progress("export", 3, stream=out) as bar:
        bar.advance(3)
    assert out.getvalue().startswith("export: 3/3 events (100%)")


def test_on_a_terminal_it_draws_a_bar_with_events_per_second() -> None:
    out = io.StringIO()
    with progress("export", 40, stream=out, terminal=True) as bar:
        bar.advance(40)
    drawn = out.getvalue()
    assert "export" in drawn
    assert "40/40" in drawn
    assert "events/s" in drawn


def test_a_job_that_ends_well_ends_its_bar_at_100_percent_whatever_it_counted() -> None:
    # A replay counts only the events some projection wants: 78 of 100 here.
    out = io.StringIO()
    with progress("replay", 100, stream=out, terminal=True) as bar:
        bar.advance(78)
    final = out.getvalue().rsplit("\r", 1)[-1]
    assert "100/100" in final
    assert "100%" in final
    plain = io.StringIO()
    with progress("replay", 100, stream=plain) as bar:
        bar.advance(78)
    assert plain.getvalue().startswith("replay: 100/100 events (100%)")
