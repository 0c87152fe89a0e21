"""`make bench`: Tablestack and three peers over the same PostgreSQL data, under wrk.

Steps: recreate and load the bench database; start the four servers (one process each);
check every scenario's answer on every target; warm up; then round by round run each scenario
on each target (the target order rotates every round), sampling the server's RSS and CPU, and
Tablestack's reads during 20 sign-ins (bench/signin.py); time the admin pages; write
bench/results/results.json and results.md and print the table.
See bench/README.md.
"""

import argparse
import asyncio
import json
import os
import platform
import resource
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bench import admin, dataset, profiling, report, signin
from bench.checks import CheckFailed, check_scenario
from bench.targets import (
    SCENARIOS,
    LoadSampler,
    Server,
    Target,
    all_targets,
    busy_cpu_seconds,
)

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
LUA = HERE / "wrk" / "scenario.lua"
SIGNIN_LUA = HERE / "wrk" / "signin.lua"
# Scenarios outside wrk/scenario.lua's modes, measured on Tablestack alone.
TABLESTACK_ONLY = {"signin": "GET one during 20 sign-ins"}
API_EMAIL = "bench@example.com"
ADMIN_EMAIL = "bench-admin@example.com"
WRITES = ("create", "patch")


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every scenario (3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds of each wrk run (5)")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per run (2)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument(
        "--targets", default="tablestack,ceiling,flask,fastcrud", help="comma-separated keys"
    )
    parser.add_argument(
        "--scenarios", default=",".join([*SCENARIOS, *TABLESTACK_ONLY]), help="comma-separated keys"
    )
    parser.add_argument(
        "--database-url",
        default=os.environ.get(
            "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/tablestack_bench"
        ),
        help="the bench database (dropped and recreated!)",
    )
    parser.add_argument("--reuse-database", action="store_true", help="skip recreate and load")
    parser.add_argument("--no-pin", action="store_true", help="do not pin server and wrk to CPUs")
    parser.add_argument("--admin-requests", type=int, default=30, help="requests per admin page")
    parser.add_argument("--base-port", type=int, default=8700)
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="TARGET:SCENARIO",
        help="after the rounds, sample TARGET with py-spy under SCENARIO (repeatable)",
    )
    args = parser.parse_args(argv)
    for item in args.profile:
        target, _, scenario = item.partition(":")
        if scenario not in SCENARIOS or target not in args.targets.split(","):
            parser.error(f"--profile {item!r}: use TARGET:SCENARIO, e.g. tablestack:get")
    unknown = set(args.scenarios.split(",")) - set(SCENARIOS) - set(TABLESTACK_ONLY)
    if unknown:
        parser.error(
            f"unknown scenario(s) {', '.join(sorted(unknown))};"
            f" use {', '.join([*SCENARIOS, *TABLESTACK_ONLY])}"
        )
    known = [t.key for t in all_targets(args.base_port)]
    unknown = set(args.targets.split(",")) - set(known)
    if unknown:
        parser.error(f"unknown target(s) {', '.join(sorted(unknown))}; use {', '.join(known)}")
    for name in ("rounds", "duration", "warmup", "connections", "threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.admin_requests < 2:
        parser.error("--admin-requests must be at least 2 (for a p95)")
    return args


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's package when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("wrk is missing: installing the Debian package `wrk` (apt-get install -y wrk)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: error: wrk is not installed; install it: apt-get install wrk")
    return found


def run_wrk(
    wrk: str,
    target: Target,
    scenario: str,
    token: str,
    seconds: int,
    args: argparse.Namespace,
    tag: str,
    volume: dataset.Volume,
    connections: int | None = None,
    delay_ms: int | None = None,
) -> dict[str, Any]:
    """One wrk run; the parsed BENCH_RESULT line of scenario.lua (paced with `delay_ms`)."""
    command = [
        wrk,
        f"--threads={args.threads}",
        f"--connections={connections or args.connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={LUA}",
        target.base_url,
        "--",
        scenario,
        target.paths[scenario],
        token or "-",
        str(volume.products),
        str(volume.categories),
        tag,
    ]
    env = {**os.environ, "BENCH_DELAY_MS": str(delay_ms)} if delay_ms else None
    completed = subprocess.run(
        pinned(command, args), capture_output=True, text=True, timeout=seconds + 60, env=env
    )
    for line in completed.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_RESULT "))
            return result
    raise RuntimeError(f"wrk printed no result: {completed.stderr.strip() or completed.stdout}")


def pinned(command: list[str], args: argparse.Namespace) -> list[str]:
    """The load generator's command, on CPU 1 unless --no-pin (the server has CPU 0)."""
    return command if args.no_pin else ["taskset", "--cpu-list", "1", *command]


def own_cpu_seconds() -> float:
    """CPU seconds of this driver and of the children it waited for (the wrk runs)."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def measured_run(
    wrk: str,
    server: Server,
    scenario: str,
    token: str,
    round_: int,
    args: argparse.Namespace,
    volume: dataset.Volume,
) -> report.Run:
    """One measured wrk run with the server's peak RSS and everyone's CPU during it."""
    target = server.target
    return sampled_run(
        server,
        scenario,
        round_,
        lambda: run_wrk(
            wrk, target, scenario, token, args.duration, args, f"r{round_}{target.key}", volume
        ),
    )


def sampled_run(
    server: Server, scenario: str, round_: int, load: Callable[[], dict[str, Any]]
) -> report.Run:
    """`load()` (a wrk run's result) with the server's peak RSS and everyone's CPU during it."""
    before = (server.cpu_seconds(), own_cpu_seconds(), busy_cpu_seconds())
    with LoadSampler(server) as sampler:
        result = load()
    server_cpu = server.cpu_seconds() - before[0]
    postgres_cpu = sampler.postgres_cpu
    bench_cpu = own_cpu_seconds() - before[1]  # wrk and this driver's sampling
    busy = busy_cpu_seconds() - before[2]
    return report.run_from_wrk(
        server.target.key,
        scenario,
        round_,
        result,
        sampler.peak_rss,
        server_cpu,
        postgres_cpu,
        busy - server_cpu - postgres_cpu - bench_cpu,
    )


def signin_runs(
    wrk: str,
    server: Server,
    token: str,
    round_: int,
    args: argparse.Namespace,
    volume: dataset.Volume,
    password: str,
) -> list[report.Run]:
    """The `signin` scenario's round: paced GETs alone, then beside 20 clients signing in."""
    target = server.target

    def gets() -> dict[str, Any]:
        return run_wrk(
            wrk,
            target,
            "get",
            token,
            args.duration,
            args,
            f"s{round_}",
            volume,
            connections=signin.GET_CONNECTIONS,
            delay_ms=signin.GET_DELAY_MS,
        )

    alone = sampled_run(server, "get_alone", round_, gets)
    seconds = args.duration + 2 * signin.LEAD_S
    command = signin.command(wrk, str(SIGNIN_LUA), target.base_url, seconds, API_EMAIL, password)
    signing_in = signin.start(pinned(command, args))
    try:
        time.sleep(signin.LEAD_S)  # every sign-in client is busy before the GETs start
        during = sampled_run(server, "get_during_signin", round_, gets)
        stdout, stderr = signing_in.communicate(timeout=seconds + 60)
    finally:
        if signing_in.poll() is None:
            signing_in.kill()
            signing_in.wait()
        # wrk is gone, but the server still works through the sign-ins it had accepted: the
        # next load must not compete with them.
        waited = signin.wait_idle(target.base_url + target.ready_path, server.cpu_seconds)
        if waited > 1:
            log(f"the server took {waited:.0f} s to finish the sign-ins left in it")
    signins = report.run_from_wrk(target.key, "signin", round_, signin.parse(stdout, stderr), 0, 0)
    # The server's RSS and CPU were sampled during the GETs, which the sign-ins span.
    signins = replace(
        signins,
        peak_rss_bytes=during.peak_rss_bytes,
        cpu_percent=during.cpu_percent,
        postgres_cpu_percent=during.postgres_cpu_percent,
        other_cpu_percent=during.other_cpu_percent,
    )
    return [alone, during, signins]


def profile_run(
    wrk: str,
    server: Server,
    scenario: str,
    token: str,
    args: argparse.Namespace,
    volume: dataset.Volume,
) -> str:
    """Sample the server with py-spy under one scenario; the summary as Markdown."""
    key = server.target.key
    output = RESULTS / f"profile-{key}-{scenario}.txt"
    log(f"profiling {key} under {scenario} with py-spy ...")
    spy = profiling.start(server.process.pid, args.duration, output)
    run_wrk(wrk, server.target, scenario, token, args.duration + 2, args, f"p{key}", volume)
    _, errors = spy.communicate(timeout=60)
    if scenario in WRITES:
        asyncio.run(dataset.restore(args.database_url, volume.products))
    if spy.returncode != 0 or not output.exists():
        reason = errors.decode(errors="replace").strip().splitlines()
        return f"### Profile: {key} {scenario}\n\npy-spy failed: {reason[-1] if reason else '?'}\n"
    parsed = profiling.parse_collapsed(output.read_text())
    return profiling.summary(parsed, f"{key} under {scenario}, {output.name}")


class Unavailable(Exception):
    """A target cannot be measured in this build; the message says why."""


def fetch_token(target: Target, password: str) -> str:
    """A Bearer token from Tablestack's `POST /api/auth/token` for the bench's editor user."""
    with httpx.Client(base_url=target.base_url, timeout=30) as client:
        if client.get("/api/products").status_code == 404:  # 401/200 when the route exists
            raise Unavailable("no /api/products in this build")
        response = client.post(
            "/api/auth/token", data={"username": API_EMAIL, "password": password}
        )
        if response.status_code != 200:
            raise Unavailable(
                f"POST /api/auth/token answered HTTP {response.status_code}: {response.text[:120]}"
            )
        try:
            token: str = response.json()["access_token"]
        except (ValueError, KeyError):
            raise Unavailable(
                f"no access_token in the token answer: {response.text[:120]}"
            ) from None
        return token


async def category_total(database_url: str, category_id: int) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        total: int = await connection.fetchval(
            "SELECT count(*) FROM products WHERE category_id = $1", category_id
        )
        return total
    finally:
        await connection.close()


def versions() -> dict[str, str]:
    names = ["fastapi", "starlette", "uvicorn", "sqlalchemy", "pydantic", "asyncpg", "flask"]
    names += ["flask-sqlalchemy", "gunicorn", "psycopg", "fastcrud", "sqladmin", "orjson"]
    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except Exception:
            found[name] = "missing"
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    found["wrk"] = wrk_version.split()[1] if wrk_version else "?"
    return found


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    wrk = ensure_wrk()
    volume = dataset.Volume()
    wanted = args.targets.split(",")
    targets = [t for t in all_targets(args.base_port) if t.key in wanted]
    scenarios = {k: v for k, v in SCENARIOS.items() if k in args.scenarios.split(",")}
    signin_wanted = "signin" in args.scenarios.split(",")
    signin_note: str | None = None
    password = secrets.token_urlsafe(16)
    env = {
        "ENVIRONMENT": "production",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DATABASE_URL": dataset.asyncpg_url(args.database_url),
        "BENCH_DATABASE_URL": args.database_url,
        "BENCH_PW": password,
        "ACCESS_TOKEN_EXPIRE_MINUTES": "240",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "logs").mkdir(exist_ok=True)

    if not args.reuse_database:
        log(f"loading {volume.products:,} products, {volume.customers:,} customers ...")
        dataset.prepare(args.database_url, env, volume)
    for email, role in ((API_EMAIL, "editor"), (ADMIN_EMAIL, "admin")):
        dataset.tablestack(
            ["create-user", email, "--role", role, "--password-env", "BENCH_PW", "--update"], env
        )
    category_7 = asyncio.run(category_total(args.database_url, 7))

    unavailable: dict[str, str] = {}
    runs: list[report.Run] = []
    admin_results: dict[str, dict[str, float]] | None = None
    admin_note: str | None = None
    servers: dict[str, Server] = {}
    profiles: list[str] = []
    if (os.cpu_count() or 1) < 2 or not shutil.which("taskset"):
        args.no_pin = True  # nothing to pin to, or no taskset (util-linux)
    cpu = None if args.no_pin else "0"
    if not args.no_pin:
        os.sched_setaffinity(0, {1})  # this driver's sampling stays off the servers' core
    try:
        for target in targets:
            log(f"starting {target.label} on :{target.port}")
            servers[target.key] = Server(target, env, RESULTS / "logs", cpu)
        for key, server in list(servers.items()):
            try:
                server.wait_ready()
            except RuntimeError as exc:
                unavailable[key] = f"did not start: {exc}"
                log(
                    f"{server.target.label} did not start; its rows are marked not available: {exc}"
                )
                server.stop()
                del servers[key]

        token = ""
        if "tablestack" in servers:
            try:
                token = fetch_token(servers["tablestack"].target, password)
            except (Unavailable, httpx.HTTPError) as exc:
                unavailable["tablestack"] = str(exc)
                log(f"Tablestack is not measured: {exc}")

        runnable: dict[str, list[str]] = {}
        for target in targets:
            if target.key in unavailable:
                continue
            # The same Authorization header goes to every target; the peers ignore it.
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            with httpx.Client(base_url=target.base_url, headers=headers, timeout=30) as client:
                for scenario in scenarios:
                    try:
                        check_scenario(client, target, scenario, volume.products, category_7)
                    except (CheckFailed, httpx.HTTPError, ValueError, KeyError) as exc:
                        unavailable[f"{target.key}:{scenario}"] = f"wrong answer: {exc}"
                        log(f"{target.label} / {scenario}: check failed: {exc}")
                    else:
                        runnable.setdefault(target.key, []).append(scenario)
                if target.key == "tablestack" and signin_wanted:
                    try:
                        signin.check(client, API_EMAIL, password)
                    except (CheckFailed, httpx.HTTPError, ValueError) as exc:
                        signin_note = f"wrong answer: {exc}"
                        log(f"{target.label} / signin: check failed: {exc}")
                    else:
                        runnable.setdefault(target.key, []).append("signin")
            asyncio.run(dataset.restore(args.database_url, volume.products))

        active = [t for t in targets if t.key in runnable]
        log("warming up ...")
        for target in active:
            for scenario in runnable[target.key]:
                if scenario not in SCENARIOS:
                    continue  # signin: its GETs are warmed up by `get`, its sign-ins need none
                run_wrk(wrk, target, scenario, token, args.warmup, args, "w" + target.key, volume)
                if scenario in WRITES:
                    asyncio.run(dataset.restore(args.database_url, volume.products))

        for round_ in range(1, args.rounds + 1):
            shift = (round_ - 1) % max(len(active), 1)
            order = active[shift:] + active[:shift]
            for scenario in scenarios:
                for target in order:
                    if scenario not in runnable[target.key]:
                        continue
                    run = measured_run(
                        wrk, servers[target.key], scenario, token, round_, args, volume
                    )
                    runs.append(run)
                    log(
                        f"round {round_}/{args.rounds} {scenario:<6} {target.key:<10} "
                        f"{run.requests_per_s:7,.0f} req/s  p50 {run.p50_ms:6.1f} ms  "
                        f"p99 {run.p99_ms:6.1f} ms  rss {run.peak_rss_bytes / report.MB:4.0f} MB  "
                        f"cpu {run.cpu_percent:3.0f}%  pg {run.postgres_cpu_percent:3.0f}%  "
                        f"other {run.other_cpu_percent:3.0f}%"
                        + (f"  ERRORS {run.errors}" if run.errors else "")
                    )
                    if scenario in WRITES:
                        asyncio.run(dataset.restore(args.database_url, volume.products))

        # After the other scenarios' rounds: the sign-ins leave argon2's memory in the server's
        # RSS, which the memory goal of the CRUD scenarios must not see.
        for round_ in (
            range(1, args.rounds + 1) if "signin" in runnable.get("tablestack", []) else []
        ):
            for run in signin_runs(
                wrk, servers["tablestack"], token, round_, args, volume, password
            ):
                runs.append(run)
                log(
                    f"round {round_}/{args.rounds} signin {run.scenario:<17} "
                    f"{run.requests_per_s:7,.0f} req/s  p50 {run.p50_ms:6.1f} ms  "
                    f"p99 {run.p99_ms:6.1f} ms  rss {run.peak_rss_bytes / report.MB:4.0f} MB  "
                    f"cpu {run.cpu_percent:3.0f}%"
                    + (f"  ERRORS {run.errors}" if run.errors else "")
                )

        for item in args.profile:
            key, _, scenario = item.partition(":")
            if scenario not in runnable.get(key, []):
                log(f"--profile {item}: not measured in this run, not profiled")
                continue
            profiles.append(profile_run(wrk, servers[key], scenario, token, args, volume))

        if "tablestack" in servers:
            try:
                admin_results = admin.measure(
                    servers["tablestack"].target.base_url,
                    ADMIN_EMAIL,
                    password,
                    volume.products,
                    args.admin_requests,
                )
            except (admin.AdminUnavailable, httpx.HTTPError) as exc:
                admin_note = str(exc)
                log(f"admin scenario skipped: {exc}")
        else:
            admin_note = unavailable.get("tablestack", "Tablestack not among the targets")
    finally:
        for server in servers.values():
            server.stop()

    summaries = report.summarize(runs)
    # Peak RSS of the CRUD scenarios: argon2 takes 64 MiB per verification in flight, so the
    # sign-ins' peak is shown in their own section rather than against the 150 MB goal.
    rss = report.peak_rss([r for r in runs if r.scenario in SCENARIOS])
    goal_list = report.goals(summaries, rss, admin_results)
    labels = {t.key: t.label for t in targets}
    if signin_wanted and signin_note is None and "tablestack" not in runnable:
        signin_note = unavailable.get("tablestack", "Tablestack not among the targets")
    signin_section = (
        report.signin_markdown(runs, args.rounds, signin.pacing(), signin_note)
        if signin_wanted
        else ""
    )
    table = report.markdown(
        summaries,
        labels,
        scenarios,
        rss,
        unavailable,
        admin_results,
        admin_note,
        goal_list,
        args.rounds,
        report.noisy_runs(runs),
        signin_section,
    )
    meta = {
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "elapsed_s": round(time.monotonic() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "python": platform.python_version(),
        "versions": versions(),
        "settings": {
            "rounds": args.rounds,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "connections": args.connections,
            "wrk_threads": args.threads,
            "pinned": not args.no_pin,
            "products": volume.products,
            "categories": volume.categories,
            "customers": volume.customers,
            "signin": {
                "clients": signin.CLIENTS,
                "get_connections": signin.GET_CONNECTIONS,
                "get_delay_ms": signin.GET_DELAY_MS,
            },
        },
    }
    document = {
        "meta": meta,
        "targets": labels,
        "scenarios": {**scenarios, **(TABLESTACK_ONLY if signin_wanted else {})},
        "unavailable": unavailable,
        "summaries": [asdict(s) for s in summaries],
        "peak_rss_bytes": rss,
        "admin": admin_results,
        "admin_note": admin_note,
        "goals": [asdict(g) for g in goal_list],
        "runs": [asdict(r) for r in runs],
    }
    (RESULTS / "results.json").write_text(json.dumps(document, indent=2) + "\n")
    table += "".join(f"\n{text}" for text in profiles)
    (RESULTS / "results.md").write_text(table)
    print(table)
    log(f"done in {meta['elapsed_s']:.0f} s: bench/results/results.json, bench/results/results.md")
    return 0


def entry() -> int:
    """`python -m bench.run`: expected failures are one line on stderr and exit 1."""
    try:
        return main()
    except (OSError, asyncpg.PostgresError, RuntimeError, subprocess.SubprocessError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"bench: error: {type(exc).__name__}: {detail}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(entry())
