"""The one retry policy: delays grow, stop at the cap, spread out, start over."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events.retry import Backoff, retry_delay

bases = st.floats(min_value=0.001, max_value=10)


@given(attempt=st.integers(min_value=1, max_value=10_000), base=bases,
       factor=st.floats(min_value=1, max_value=100), seed=st.integers())  # fmt: skip
def test_a_delay_lies_in_the_upper_half_of_its_doubling_ceiling(
    attempt: int, base: float, factor: float, seed: int
) -> None:
    cap = base * factor
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 60))
    delay = retry_delay(attempt, base, cap, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling <= cap


@given(base=bases, factor=st.floats(min_value=1, max_value=100), seed=st.integers())
def test_delays_never_shrink_from_one_failure_to_the_next_by_more_than_jitter(
    base: float, factor: float, seed: int
) -> None:
    backoff = Backoff("test", base, base * factor, rng=random.Random(seed))
    delays = [backoff.next() for _ in range(40)]
    # Each delay's floor is the previous one's ceiling halved: never below half of it.
    assert all(later >= earlier / 2 for earlier, later in itertools.pairwise(delays))
    assert max(delays) <= base * factor
    assert delays[-1] >= base * factor / 2  # reached the cap


def test_a_reset_starts_the_delays_from_the_base_again() -> None:
    backoff = Backoff("test", 1.0, 64.0, rng=random.Random(1))
    for _ in range(10):
        backoff.next()
    assert backoff.failures == 10
    backoff.reset()
    assert 0.5 <= backoff.next() <= 1.0


@pytest.mark.parametrize(("base", "cap"), [(0, 1), (-1, 1), (2, 1)])
def test_a_backoff_without_a_positive_base_below_its_cap_is_refused(
    base: float, cap: float
) -> None:
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff("test", base, cap)
