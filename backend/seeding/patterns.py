"""Random strings that match a column's regular expression: rstr's Xeger, with repeats bounded.

Why a subclass: Xeger repeats `*` and `+` up to 100 times (a module constant, also applied to
`{m,n}` - so `{150}` fails outright), which makes `^[a-z0-9]+(?:-[a-z0-9]+)*$` thousands of
characters long, never within a column's max_length. Overriding Xeger's private
`_handle_repeat(start, end, value)` lets each column choose how far an open repeat goes. That is
rstr's private API: it is used here only, each assumption is pinned by
tests/seeding/test_patterns.py, and pyproject.toml bounds rstr below its next major version.

Known limit: a negated class (`[^a-z]`) draws from `set(string.printable) - {...}`, whose order
follows Python's string hashing, so such a pattern's strings are not reproduced across
processes by --random-seed (every other pattern is).
"""

import random
import re

from rstr.xeger import Xeger


class PatternStrings(Xeger):
    """Strings matching a pattern, drawn from `rng`; an open repeat (`*`, `+`, `{m,}`) adds at
    most `spread` repetitions to its minimum."""

    def __init__(self, rng: random.Random, *, spread: int = 8) -> None:
        super().__init__(rng)
        self.spread = spread

    def _handle_repeat(self, start_range: int, end_range: int, value: str) -> str:
        end = min(end_range, start_range + self.spread)
        times = self._random.randint(start_range, end)
        return "".join("".join(self._handle_state(state) for state in value) for _ in range(times))

    def matching(self, pattern: str, *, min_length: int = 0, max_length: int | None = None) -> str:
        """A string matching `pattern` (searched as pydantic does, anchors included) of
        `min_length` to `max_length` characters; ValueError when 200 draws find none."""
        compiled = re.compile(pattern)
        for _ in range(200):
            text = self.xeger(pattern)
            fits = min_length <= len(text) and (max_length is None or len(text) <= max_length)
            if fits and compiled.search(text):
                return text
        raise ValueError(
            f"no string of {min_length} to {max_length or 'any number of'} characters found "
            f"for the pattern {pattern!r}"
        )
