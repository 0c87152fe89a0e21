"""The `signin` scenario: its wrk command, its result, its section and its goal in the report."""

import json
from urllib.parse import parse_qs

from bench import report, signin
from bench.report import Run


def wrk_line(requests: int, status: int, answers: dict[str, int]) -> str:
    result = {
        "requests": requests,
        "duration_us": 7_000_000,
        "bytes": 1,
        "errors": {"connect": 0, "read": 0, "write": 0, "status": status, "timeout": 0},
        "latency_us": {"p50": 400_000, "p90": 500_000, "p99": 900_000, "mean": 1.0, "max": 1},
        "answers": answers,
    }
    return "Running 7s test\nBENCH_RESULT " + json.dumps(result) + "\n"


def test_the_command_signs_in_20_clients_with_the_right_and_a_wrong_password() -> None:
    command = signin.command("wrk", "signin.lua", "http://127.0.0.1:8700", 7, "a@b.c", "pw&=x")
    assert "--connections=20" in command and "--duration=7s" in command
    path, right, wrong = command[command.index("--") + 1 :]
    assert path == "/api/auth/token"
    assert parse_qs(right) == {"username": ["a@b.c"], "password": ["pw&=x"]}
    assert parse_qs(wrong)["password"] == [signin.WRONG_PASSWORD]


def test_the_wrong_passwords_401s_are_not_errors_but_other_answers_are() -> None:
    answers = {"accepted": 10, "refused": 10, "other": 2}
    result = signin.parse(wrk_line(22, 12, answers), "")
    run = report.run_from_wrk("tablestack", "signin", 1, result, 0, 0)
    assert run.errors == 2
    assert round(run.requests_per_s, 3) == round(22 / 7, 3)


def test_a_missing_result_names_wrk_s_complaint() -> None:
    try:
        signin.parse("", "unable to connect to 127.0.0.1:8700 Connection refused")
    except RuntimeError as exc:
        assert "Connection refused" in str(exc)
    else:
        raise AssertionError("no RuntimeError")


def run(scenario: str, p99: float, round_: int = 1, errors: int = 0, rps: float = 300.0) -> Run:
    return Run(
        target="tablestack",
        scenario=scenario,
        round=round_,
        requests_per_s=rps,
        p50_ms=p99 / 2,
        p99_ms=p99,
        errors=errors,
        peak_rss_bytes=200 * report.MB,
        cpu_percent=95.0,
    )


def signin_goal(runs: list[Run]) -> report.Goal:
    goals = report.goals(report.summarize(runs), {}, None)
    (goal,) = [g for g in goals if "sign-ins" in g.text]
    return goal


ALONE = [run("get_alone", 3.0, r) for r in (1, 2, 3)]


def test_the_goal_is_the_p99_of_the_gets_during_the_sign_ins() -> None:
    slow = signin_goal(
        [*ALONE, *(run("get_during_signin", p, r) for r, p in enumerate((40, 900, 800)))]
    )
    assert slow.text == "get one during 20 concurrent sign-ins: p99 < 50 ms"
    assert slow.status == "not met"
    assert slow.measured == "p99 800.0 ms at 300 req/s (alone: 3.0 ms at 300 req/s)"
    assert signin_goal([*ALONE, run("get_during_signin", 12.0)]).status == "met"
    assert signin_goal([*ALONE, run("get_during_signin", 12.0, errors=1)]).status == "not met"
    assert signin_goal(ALONE).status == "not measured"


def test_a_stalled_server_does_not_pass_on_the_few_gets_it_answered() -> None:
    none = signin_goal([*ALONE, run("get_during_signin", 0.0, rps=0.0)])
    assert (none.status, none.measured) == ("not met", "no GET answered while the sign-ins ran")
    few = signin_goal([*ALONE, run("get_during_signin", 12.0, rps=100.0)])
    assert few.status == "not met"


def test_the_section_shows_the_three_loads_and_keeps_their_rss_out_of_the_memory_goal() -> None:
    runs = [run("get_alone", 3.0), run("get_during_signin", 800.0), run("signin", 2000.0)]
    text = report.signin_markdown(runs, 1, "Paced.", None)
    assert "| `GET /api/products/{id}`, paced, during 20 sign-ins | 300 | 400.0 | 800.0 |" in text
    assert "| 95% | 200 | 0 |" in text
    assert "Paced. Goal: p99 of the GETs during the sign-ins < 50 ms" in text
    whole = report.markdown([], {}, {}, {}, {}, None, None, [], rounds=1, signin_section=text)
    assert whole.index("### Sign-in under load") < whole.index("### The issue's targets")
    stalled = report.signin_markdown([run("get_during_signin", 0.0, rps=0.0)], 1, "Paced.", None)
    assert "during 20 sign-ins | 0 | none answered | none answered | 95% |" in stalled


def test_the_section_says_why_it_was_not_measured() -> None:
    text = report.signin_markdown([], 3, "Paced.", "wrong answer: sign-in -> HTTP 404")
    assert "Not measured: wrong answer: sign-in -> HTTP 404." in text
