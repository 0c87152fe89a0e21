"""Medians over rounds, ratios to the ceiling and to Flask, the issue's targets, the tables.

Pure functions over plain data, so the arithmetic is unit-tested (tests/bench/).
"""

from dataclasses import dataclass
from statistics import median
from typing import Any

CEILING = "ceiling"
FLASK = "flask"
FASTCRUD = "fastcrud"
TABLESTACK = "tablestack"
MB = 1024 * 1024
ADMIN_PAGES = {
    "list": "products list `/admin/product/list`",
    "edit": "product edit `/admin/product/edit/{id}`",
}
# The `signin` scenario (bench/signin.py): its runs are Runs of these scenario keys.
SIGNIN_CLIENTS = 20
SIGNIN_P99_MS = 50.0
# The paced GETs beside the sign-ins must keep this share of their req/s alone: a GET still
# unanswered when wrk stops is not in its percentiles, so a stalled server would show a p99
# of the few GETs that got through.
SIGNIN_KEPT_RATE = 0.8
SIGNIN_RUNS = {
    "get_alone": "`GET /api/products/{id}`, paced, alone",
    "get_during_signin": f"`GET /api/products/{{id}}`, paced, during {SIGNIN_CLIENTS} sign-ins",
    "signin": f"sign-ins `POST /api/auth/token`, {SIGNIN_CLIENTS} clients back to back",
}


@dataclass(frozen=True)
class Run:
    """One wrk run of one scenario on one target."""

    target: str
    scenario: str
    round: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    peak_rss_bytes: int
    cpu_percent: float
    postgres_cpu_percent: float = 0.0
    # CPU that neither the server, PostgreSQL nor wrk used: other work on the machine (noise)
    other_cpu_percent: float = 0.0


@dataclass(frozen=True)
class Summary:
    """The medians of a target's runs of one scenario."""

    target: str
    scenario: str
    rounds: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_percent: float
    postgres_cpu_percent: float
    vs_ceiling: float | None
    vs_flask: float | None
    vs_fastcrud: float | None


def run_from_wrk(
    target: str,
    scenario: str,
    round_: int,
    wrk: dict[str, Any],
    peak_rss_bytes: int,
    cpu_seconds: float,
    postgres_cpu_seconds: float = 0.0,
    other_cpu_seconds: float = 0.0,
) -> Run:
    """A Run from the JSON printed by scenario.lua's done(), CPU seconds as % of one core."""
    seconds = wrk["duration_us"] / 1e6
    errors = sum(int(v) for v in wrk["errors"].values())
    return Run(
        target=target,
        scenario=scenario,
        round=round_,
        requests_per_s=wrk["requests"] / seconds if seconds else 0.0,
        p50_ms=wrk["latency_us"]["p50"] / 1000,
        p99_ms=wrk["latency_us"]["p99"] / 1000,
        errors=errors,
        peak_rss_bytes=peak_rss_bytes,
        cpu_percent=100 * cpu_seconds / seconds if seconds else 0.0,
        postgres_cpu_percent=100 * postgres_cpu_seconds / seconds if seconds else 0.0,
        other_cpu_percent=max(0.0, 100 * other_cpu_seconds / seconds) if seconds else 0.0,
    )


def _ratio(value: float, reference: float | None) -> float | None:
    return value / reference if reference else None


def summarize(runs: list[Run]) -> list[Summary]:
    """Median per (target, scenario), with ratios of the median req/s to the references'."""
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        groups.setdefault((run.target, run.scenario), []).append(run)
    medians = {key: median(r.requests_per_s for r in group) for key, group in groups.items()}
    summaries = []
    for (target, scenario), group in groups.items():
        rps = medians[(target, scenario)]
        summaries.append(
            Summary(
                target=target,
                scenario=scenario,
                rounds=len(group),
                requests_per_s=rps,
                p50_ms=median(r.p50_ms for r in group),
                p99_ms=median(r.p99_ms for r in group),
                errors=sum(r.errors for r in group),
                cpu_percent=median(r.cpu_percent for r in group),
                postgres_cpu_percent=median(r.postgres_cpu_percent for r in group),
                vs_ceiling=_ratio(rps, medians.get((CEILING, scenario))),
                vs_flask=_ratio(rps, medians.get((FLASK, scenario))),
                vs_fastcrud=_ratio(rps, medians.get((FASTCRUD, scenario))),
            )
        )
    return summaries


NOISY_CPU_PERCENT = 20.0


def noisy_runs(runs: list[Run]) -> list[Run]:
    """Runs during which other processes took more than a fifth of a core."""
    return [r for r in runs if r.other_cpu_percent > NOISY_CPU_PERCENT]


def peak_rss(runs: list[Run]) -> dict[str, int]:
    """The highest RSS each target reached under load, over all its runs."""
    peaks: dict[str, int] = {}
    for run in runs:
        peaks[run.target] = max(peaks.get(run.target, 0), run.peak_rss_bytes)
    return peaks


@dataclass(frozen=True)
class Goal:
    """One of the issue's targets for Tablestack, and whether the run met it."""

    text: str
    status: str  # "met", "not met", "not measured"
    measured: str


def _goal(text: str, pairs: list[tuple[float | None, float]], measured: str) -> Goal:
    if not pairs or any(value is None for value, _ in pairs):
        return Goal(text, "not measured", measured or "-")
    met = all(value is not None and value >= bound for value, bound in pairs)
    return Goal(text, "met" if met else "not met", measured)


def goals(
    summaries: list[Summary], rss: dict[str, int], admin: dict[str, dict[str, float]] | None
) -> list[Goal]:
    """Check Tablestack's numbers against the issue's targets."""
    mine = {s.scenario: s for s in summaries if s.target == TABLESTACK}
    result = []
    for scenario, name in (("get", "get one"), ("create", "create"), ("patch", "update")):
        s = mine.get(scenario)
        pairs = [(s.vs_flask, 3.0), (s.vs_fastcrud, 3.0)] if s else []
        measured = (
            f"{fmt_ratio(s.vs_flask)} Flask, {fmt_ratio(s.vs_fastcrud)} FastCRUD" if s else ""
        )
        result.append(_goal(f"{name}: >= 3x Flask and >= 3x FastCRUD", pairs, measured))
    for scenario, name in (("list", "list + total"), ("filter", "filtered list + total")):
        s = mine.get(scenario)
        pairs = [(s.vs_flask, 1.5), (s.vs_ceiling, 0.9)] if s else []
        measured = f"{fmt_ratio(s.vs_flask)} Flask, {fmt_ratio(s.vs_ceiling)} ceiling" if s else ""
        result.append(_goal(f"{name}: >= 1.5x Flask and >= 0.9x ceiling", pairs, measured))
    if TABLESTACK in rss:
        mb = rss[TABLESTACK] / MB
        result.append(
            Goal(
                "server RSS under load <= 150 MB",
                "met" if mb <= 150 else "not met",
                f"{mb:.0f} MB",
            )
        )
    else:
        result.append(Goal("server RSS under load <= 150 MB", "not measured", "-"))
    for page in ("list", "edit"):
        timing = (admin or {}).get(page)
        text = f"admin {page} page: server time < 100 ms"
        if timing is None:
            result.append(Goal(text, "not measured", "-"))
        else:
            ms = timing["median_ms"]
            result.append(Goal(text, "met" if ms < 100 else "not met", f"{ms:.1f} ms median"))
    text = f"get one during {SIGNIN_CLIENTS} concurrent sign-ins: p99 < {SIGNIN_P99_MS:.0f} ms"
    result.append(_signin_goal(text, mine.get("get_during_signin"), mine.get("get_alone")))
    return result


def _signin_goal(text: str, during: Summary | None, alone: Summary | None) -> Goal:
    if during is None:
        return Goal(text, "not measured", "-")
    if not during.requests_per_s:
        return Goal(text, "not met", "no GET answered while the sign-ins ran")
    measured = f"p99 {during.p99_ms:.1f} ms at {during.requests_per_s:,.0f} req/s"
    met = during.p99_ms < SIGNIN_P99_MS and during.errors == 0
    if alone is not None:
        measured += f" (alone: {alone.p99_ms:.1f} ms at {alone.requests_per_s:,.0f} req/s)"
        met = met and during.requests_per_s >= SIGNIN_KEPT_RATE * alone.requests_per_s
    return Goal(text, "met" if met else "not met", measured)


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def signin_markdown(runs: list[Run], rounds: int, pacing: str, note: str | None) -> str:
    """The `signin` scenario's section: the paced GETs alone and during the sign-ins."""
    lines = [f"### Sign-in under load (Tablestack, median of {rounds} rounds)", ""]
    mine = [r for r in runs if r.target == TABLESTACK and r.scenario in SIGNIN_RUNS]
    if not mine:
        return "\n".join([*lines, f"Not measured: {note or 'skipped'}.", ""])
    by_key = {s.scenario: s for s in summarize(mine)}
    rss = {key: max(r.peak_rss_bytes for r in mine if r.scenario == key) for key in by_key}
    lines += [
        "| load | req/s | p50 ms | p99 ms | server CPU | peak RSS MB | errors |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, title in SIGNIN_RUNS.items():
        s = by_key.get(key)
        if s is None:
            lines.append(f"| {title} | not measured | | | | | |")
            continue
        if not s.requests_per_s:
            lines.append(
                f"| {title} | 0 | none answered | none answered | {s.cpu_percent:.0f}%"
                f" | {rss[key] / MB:.0f} | {s.errors} |"
            )
            continue
        lines.append(
            f"| {title} | {s.requests_per_s:,.0f} | {s.p50_ms:.1f} | {s.p99_ms:.1f}"
            f" | {s.cpu_percent:.0f}% | {rss[key] / MB:.0f} | {s.errors} |"
        )
    lines += [
        "",
        f"{pacing} Goal: p99 of the GETs during the sign-ins < {SIGNIN_P99_MS:.0f} ms, at no"
        f" less than {SIGNIN_KEPT_RATE:.0%} of their req/s alone (a GET unanswered when the run"
        " ends is in no percentile, so a stalled server answers few)."
        " Errors: wrk's socket errors and timeouts, and answers other than 200 (and, for the"
        " sign-ins, 401 to the wrong password). The sign-ins' CPU and RSS are those sampled"
        " during the GETs beside them.",
        "",
    ]
    return "\n".join(lines)


def markdown(
    summaries: list[Summary],
    labels: dict[str, str],
    scenarios: dict[str, str],
    rss: dict[str, int],
    unavailable: dict[str, str],
    admin: dict[str, dict[str, float]] | None,
    admin_note: str | None,
    goal_list: list[Goal],
    rounds: int,
    noisy: list[Run] | None = None,
    signin_section: str = "",
) -> str:
    """The results as Markdown: throughput, memory, admin pages, sign-ins, the issue's targets."""
    by_key = {(s.target, s.scenario): s for s in summaries}
    lines = [
        f"### Throughput (median of {rounds} rounds)",
        "",
        "| scenario | target | req/s | p50 ms | p99 ms | vs ceiling | vs Flask | vs FastCRUD |"
        " server CPU | PG CPU | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario, title in scenarios.items():
        for target, label in labels.items():
            s = by_key.get((target, scenario))
            if s is None:
                reason = unavailable.get(target) or unavailable.get(f"{target}:{scenario}") or "-"
                lines.append(f"| {title} | {label} | not available ({reason}) | | | | | | | | |")
                continue
            lines.append(
                f"| {title} | {label} | {s.requests_per_s:,.0f} | {s.p50_ms:.1f} | {s.p99_ms:.1f}"
                f" | {fmt_ratio(s.vs_ceiling)} | {fmt_ratio(s.vs_flask)}"
                f" | {fmt_ratio(s.vs_fastcrud)} | {s.cpu_percent:.0f}%"
                f" | {s.postgres_cpu_percent:.0f}% | {s.errors} |"
            )
    lines += [
        "",
        "req/s: median over the rounds; p50/p99: medians of each run's latency percentiles;"
        " CPU: % of one core used by the server (children included) and by PostgreSQL.",
    ]
    if noisy:
        worst = max(r.other_cpu_percent for r in noisy)
        lines += [
            "",
            f"**Noise:** in {len(noisy)} of the runs other processes on the machine used more"
            f" than {NOISY_CPU_PERCENT:.0f}% of a core (up to {worst:.0f}%); compare ratios"
            " rather than absolute req/s, or rerun on a quiet machine.",
        ]
    lines += ["", "### Server memory (peak RSS under load, children included)", ""]
    lines += ["| target | peak RSS MB |", "| --- | ---: |"]
    for target, label in labels.items():
        value = f"{rss[target] / MB:.0f}" if target in rss else "not available"
        lines.append(f"| {label} | {value} |")
    lines += ["", "### Admin pages (Tablestack, server time from a client on localhost)", ""]
    if admin:
        lines += ["| page | median ms | p95 ms | requests |", "| --- | ---: | ---: | ---: |"]
        for page, t in admin.items():
            lines.append(
                f"| {ADMIN_PAGES.get(page, page)} | {t['median_ms']:.1f} | {t['p95_ms']:.1f}"
                f" | {int(t['requests'])} |"
            )
    else:
        lines.append(f"Not measured: {admin_note or 'skipped'}.")
    if signin_section:
        lines += ["", signin_section.rstrip("\n")]
    lines += ["", "### The issue's targets for Tablestack", ""]
    lines += ["| target | status | measured |", "| --- | --- | --- |"]
    for g in goal_list:
        lines.append(f"| {g.text} | {g.status} | {g.measured} |")
    return "\n".join(lines) + "\n"
