"""Reading py-spy's collapsed stacks."""

from bench.profiling import frame_name, parse_collapsed, summary

SITE = "/v/lib/python3.11/site-packages"
RAW = f"""\
process 7:"uvicorn app";run ({SITE}/uvicorn/main.py:580);handle ({SITE}/fastapi/routing.py:300) 30
process 7:"uvicorn app";run ({SITE}/uvicorn/main.py:580);dumps (/usr/lib/python3.11/json/e.py:2) 10
not a stack line
"""


def test_frame_names_drop_lines_and_environment_prefixes() -> None:
    assert (
        frame_name("handle (/v/lib/python3.11/site-packages/fastapi/routing.py:300)")
        == "handle (fastapi/routing.py)"
    )
    assert frame_name("dumps (/usr/lib/python3.11/json/encoder.py:200)") == (
        "dumps (stdlib/json/encoder.py)"
    )
    assert frame_name("<native>") == "<native>"


def test_self_and_total_samples() -> None:
    profile = parse_collapsed(RAW)
    assert profile.samples == 40
    assert profile.self_samples["handle (fastapi/routing.py)"] == 30
    assert profile.total_samples["run (uvicorn/main.py)"] == 40
    assert not any(name.startswith("process ") for name in profile.total_samples)
    text = summary(profile, "tablestack get")
    assert "| 75.0 | `handle (fastapi/routing.py)` |" in text
    assert "| 100.0 | `run (uvicorn/main.py)` |" in text
