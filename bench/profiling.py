"""`--profile TARGET:SCENARIO`: py-spy samples a server while wrk loads one scenario.

Runs after the measured rounds (sampling slows the server), writes the collapsed stacks to
bench/results/profile-TARGET-SCENARIO.txt (open it in speedscope, or feed it to
flamegraph.pl / inferno) and a summary of where the CPU went: the functions with the most
samples on top of the stack (self) and anywhere in it (total). Only samples holding the GIL
count (`py-spy --gil`): the Python CPU time, not the waits on the database or the network.
"""

import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

PY_SPY = Path(sys.executable).parent / "py-spy"
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent) + "/"
LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
LOCATION = re.compile(r"\((?P<file>[^()]*?)(?::\d+)?\)$")


@dataclass(frozen=True)
class Profile:
    """What a collapsed-stacks profile says, by function."""

    samples: int
    self_samples: Counter[str]
    total_samples: Counter[str]


def frame_name(frame: str) -> str:
    """`get (fastapi/routing.py)` from `get (/.../site-packages/fastapi/routing.py:300)`."""
    frame = frame.strip()
    match = LOCATION.search(frame)
    if not match:
        return frame
    path = match.group("file")
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(PROJECT_ROOT):
        path = path.removeprefix(PROJECT_ROOT)
    elif "/lib/python3." in path:
        path = "stdlib/" + path.split("/lib/python3.", 1)[1].split("/", 1)[-1]
    return f"{frame[: match.start()].strip()} ({path})"


def parse_collapsed(text: str) -> Profile:
    """Aggregate py-spy's raw (collapsed) output: `frame;frame;... count` per line."""
    self_samples: Counter[str] = Counter()
    total_samples: Counter[str] = Counter()
    samples = 0
    for line in text.splitlines():
        match = LINE.match(line.strip())
        if not match:
            continue
        count = int(match.group("count"))
        # py-spy starts each stack with a `process PID:"command line"` pseudo-frame
        frames = [
            frame_name(f)
            for f in match.group("stack").split(";")
            if f.strip() and not f.startswith("process ")
        ]
        if not frames:
            continue
        samples += count
        self_samples[frames[-1]] += count
        for name in set(frames):
            total_samples[name] += count
    return Profile(samples, self_samples, total_samples)


def summary(profile: Profile, title: str, top: int = 20) -> str:
    """The top functions by self and by total samples, as Markdown."""
    lines = [f"### Profile: {title} ({profile.samples} samples)", ""]
    for heading, counter in (("self", profile.self_samples), ("total", profile.total_samples)):
        lines += [f"| {heading} % | function |", "| ---: | --- |"]
        for name, count in counter.most_common(top):
            share = 100 * count / profile.samples if profile.samples else 0.0
            lines.append(f"| {share:.1f} | `{name}` |")
        lines.append("")
    return "\n".join(lines)


def start(pid: int, seconds: int, output: Path) -> subprocess.Popen[bytes]:
    """Start py-spy on `pid` (and its subprocesses) for `seconds`, writing collapsed stacks."""
    return subprocess.Popen(
        [
            str(PY_SPY),
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--gil",  # only samples holding the GIL: where the Python CPU goes, not the waits
            "--rate",
            "200",
            "--format",
            "raw",
            "--duration",
            str(seconds),
            "--output",
            str(output),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
