"""backend/seeding/patterns.py relies on rstr's private Xeger API: each assumption, pinned."""

import random
import re

import pytest
from rstr.xeger import Xeger

from backend.seeding.patterns import PatternStrings


def test_xeger_routes_every_repeat_through_handle_repeat() -> None:
    """The override sees `*`, `+`, `?` and `{m,n}` as (start, end, states) calls."""
    seen: list[tuple[int, int]] = []

    class Spy(Xeger):
        def _handle_repeat(self, start_range: int, end_range: int, value: str) -> str:
            seen.append((start_range, end_range))
            return super()._handle_repeat(start_range, end_range, value)

    Spy(random.Random(1)).xeger(r"^a*b+c?d{2,5}$")
    assert [start for start, _ in seen] == [0, 1, 0, 2]
    assert [end for _, end in seen][2:] == [1, 5]
    assert all(end > 100 for _, end in seen[:2])  # open repeats: sre's MAXREPEAT


def test_xeger_draws_from_the_random_it_is_given() -> None:
    first = Xeger(random.Random(5)).xeger(r"^[A-Z]{2}-[0-9]{3}$")
    assert Xeger(random.Random(5)).xeger(r"^[A-Z]{2}-[0-9]{3}$") == first
    assert PatternStrings(random.Random(5)).xeger(r"^[A-Z]{2}-[0-9]{3}$") == first


@pytest.mark.parametrize(
    ("pattern", "low", "high"),
    [
        (r"^[a-z0-9]+(?:-[a-z0-9]+)*$", 1, 100),  # the demo's slug: unbounded in plain rstr
        (r"^[a-z][a-z0-9-]*$", 1, 40),
        (r"^[A-Z]{3}$", 0, 3),
        (r"^x{150}$", 150, 150),  # plain rstr caps every repeat at 100 and fails here
        (r"^(ab|cd)+\d?$", 4, 12),
    ],
)
def test_matching_strings_fit_the_pattern_and_lengths(pattern: str, low: int, high: int) -> None:
    strings = PatternStrings(random.Random(7))
    for _ in range(200):
        text = strings.matching(pattern, min_length=low, max_length=high)
        assert re.search(pattern, text) and low <= len(text) <= high, text


def test_an_impossible_length_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"no string of 5 to 8 characters found for the pattern"):
        PatternStrings(random.Random(1)).matching(r"^[A-Z]{3}$", min_length=5, max_length=8)
