"""The benchmark's arithmetic: medians, ratios, the issue's targets and the Markdown table."""

from bench import report
from bench.report import Run


def run(target: str, scenario: str, rps: float, round_: int = 1, **extra: float) -> Run:
    return Run(
        target=target,
        scenario=scenario,
        round=round_,
        requests_per_s=rps,
        p50_ms=extra.get("p50", 1.0),
        p99_ms=extra.get("p99", 2.0),
        errors=int(extra.get("errors", 0)),
        peak_rss_bytes=int(extra.get("rss", 50 * report.MB)),
        cpu_percent=90.0,
        other_cpu_percent=extra.get("other", 0.0),
    )


def test_run_from_wrk_converts_units() -> None:
    wrk = {
        "requests": 10_000,
        "duration_us": 5_000_000,
        "bytes": 1,
        "errors": {"connect": 0, "read": 1, "write": 0, "status": 2, "timeout": 0},
        "latency_us": {"p50": 1500, "p90": 2000, "p99": 9000, "mean": 1600.0, "max": 12000},
    }
    result = report.run_from_wrk("flask", "get", 2, wrk, 7, cpu_seconds=4.5)
    assert result.requests_per_s == 2000
    assert (result.p50_ms, result.p99_ms) == (1.5, 9.0)
    assert result.errors == 3
    assert result.cpu_percent == 90


def test_summaries_take_medians_and_ratios_to_the_references() -> None:
    runs = [
        run("ceiling", "get", 1000, 1),
        run("ceiling", "get", 3000, 2),
        run("ceiling", "get", 2000, 3),
        run("flask", "get", 100, 1),
        run("flask", "get", 500, 2),
        run("flask", "get", 400, 3),
        run("fastcrud", "get", 250),
        run("tablestack", "get", 1600, p50=3.0),
    ]
    by = {s.target: s for s in report.summarize(runs)}
    assert by["ceiling"].requests_per_s == 2000 and by["ceiling"].rounds == 3
    assert by["flask"].requests_per_s == 400
    assert by["tablestack"].vs_ceiling == 0.8
    assert by["tablestack"].vs_flask == 4.0
    assert by["tablestack"].vs_fastcrud == 6.4
    assert by["tablestack"].p50_ms == 3.0


def test_ratios_are_absent_without_the_reference() -> None:
    (summary,) = report.summarize([run("tablestack", "list", 100)])
    assert summary.vs_ceiling is None and summary.vs_flask is None


def test_goals_met_not_met_and_not_measured() -> None:
    runs = [
        run("flask", "get", 100),
        run("fastcrud", "get", 50),
        run("tablestack", "get", 400, rss=160 * report.MB),
        run("flask", "create", 100),
        run("fastcrud", "create", 100),
        run("tablestack", "create", 250),
    ]
    summaries = report.summarize(runs)
    goals = {
        g.text.split(":")[0]: g
        for g in report.goals(summaries, report.peak_rss(runs), {"list": {"median_ms": 40.0}})
    }
    assert goals["get one"].status == "met"
    assert goals["create"].status == "not met"
    assert goals["create"].measured == "2.50x Flask, 2.50x FastCRUD"
    assert goals["update"].status == "not measured"
    assert goals["server RSS under load <= 150 MB"].status == "not met"
    assert goals["admin list page"].status == "met"
    assert goals["admin edit page"].status == "not measured"


def test_markdown_names_unavailable_targets_and_noise() -> None:
    runs = [run("ceiling", "get", 1000), run("flask", "get", 100, other=60.0)]
    text = report.markdown(
        report.summarize(runs),
        {"tablestack": "Tablestack", "ceiling": "Ceiling", "flask": "Flask"},
        {"get": "get one by id"},
        report.peak_rss(runs),
        {"tablestack": "no /api/products in this build"},
        None,
        "/admin/login answered 404",
        [],
        rounds=1,
        noisy=report.noisy_runs(runs),
    )
    assert "| get one by id | Tablestack | not available (no /api/products in this build) |" in text
    assert "| get one by id | Flask | 100 | 1.0 | 2.0 | 0.10x | 1.00x | - | 90% | 0% | 0 |" in text
    assert "**Noise:** in 1 of the runs" in text
    assert "Not measured: /admin/login answered 404." in text


def test_markdown_shows_admin_timings() -> None:
    text = report.markdown(
        [],
        {},
        {},
        {},
        {},
        {"list": {"median_ms": 41.25, "p95_ms": 60.0, "requests": 30.0}},
        None,
        [],
        rounds=3,
    )
    assert "| products list `/admin/product/list` | 41.2 | 60.0 | 30 |" in text
