"""The simulator's printed report: the table, the comparison line and the JSON."""

from __future__ import annotations

import json
import math
import textwrap
from array import array
from pathlib import Path

import pytest

from scaler.simulate.report import compare, format_seconds, format_share, format_table, to_json
from scaler.simulate.types import PolicyResult, PolicyTimeline, Summary


def summary(**changes: object) -> Summary:
    """A burst the queue policy handled well; override any figure by keyword."""
    figures: dict[str, object] = {
        "requests": 1000,
        "served": 1000,
        "rejected": 0,
        "wait_mean": 0.11,
        "wait_p50": 0.0,
        "wait_p95": 0.04,
        "wait_p99": 1.25,
        "max_queue": 12,
        "reaction": 15.0,
        "replica_seconds": 7200.0,
        "scale_events": 6,
    }
    figures.update(changes)
    return Summary(**figures)  # type: ignore[arg-type]


def result(
    name: str, s: Summary, *, seconds: int = 3600, signal: str = "queue", routing: str = "shared"
) -> PolicyResult:
    timeline = PolicyTimeline(desired=array("i", [2] * seconds))
    return PolicyResult(name, signal, s, timeline, routing)


QUEUE = result("queue", summary())
CPU = result(
    "cpu-hpa",
    summary(
        served=988,
        rejected=12,
        wait_mean=88.2,
        wait_p50=41.5,
        wait_p95=312.44,
        wait_p99=1234.5,
        max_queue=1500,
        reaction=None,
        replica_seconds=7740.0,
        scale_events=3,
    ),
    signal="cpu",
    routing="random",
)


def test_table_has_one_aligned_row_per_policy() -> None:
    expected = """\
    policy   routing  wait mean  wait p50  wait p95  wait p99    max   rejected  reaction  replica-       avg   scale
                            (s)       (s)       (s)       (s)  queue                  (s)   seconds  replicas  events
    -------  -------  ---------  --------  --------  --------  -----  ---------  --------  --------  --------  ------
    queue    shared        0.11      0.00      0.04      1.25     12   0 (0.0%)      15.0     7,200      2.00       6
    cpu-hpa  random        88.2      41.5       312     1,234  1,500  12 (1.2%)         -     7,740      2.15       3
    """  # noqa: E501 (a table wider than a line of code)
    assert format_table([QUEUE, CPU]) == textwrap.dedent(expected).rstrip("\n")


def test_table_without_requests_or_timeline_shows_no_share_and_no_average() -> None:
    idle = result("static:2", summary(requests=0, served=0, reaction=None), seconds=0)
    row = format_table([idle]).splitlines()[-1].split()
    assert row == [
        *("static:2", "shared", "0.11", "0.00", "0.04", "1.25", "12"),
        *("0", "-", "7,200", "-", "6"),
    ]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        pytest.param(0.0, "0.00", id="zero"),
        pytest.param(0.046, "0.05", id="sub-second"),
        pytest.param(9.994, "9.99", id="under-ten"),
        pytest.param(12.34, "12.3", id="tens"),
        pytest.param(312.4, "312", id="hundreds"),
        pytest.param(86400.0, "86,400", id="a-day"),
        pytest.param(math.inf, "-", id="infinite"),
    ],
)
def test_seconds_keep_precision_that_fits_their_size(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("share", "text"),
    [
        pytest.param(0.0, "0.0%", id="none"),
        pytest.param(0.0004, "<0.1%", id="tiny-but-not-zero"),
        pytest.param(0.123, "12.3%", id="some"),
        pytest.param(0.9996, ">99.9%", id="almost-all"),
        pytest.param(1.0, "100.0%", id="all"),
    ],
)
def test_shares_never_round_to_zero_or_all(share: float, text: str) -> None:
    assert format_share(share) == text


def test_compare_puts_the_first_policy_against_each_other_and_the_stacks_last() -> None:
    static = result("static:4", summary(wait_p95=0.04, replica_seconds=14400.0))
    least = result("cpu-hpa@least", summary(wait_p95=100.0), routing="least")
    assert compare([QUEUE, CPU, static, least]) == "\n".join(
        [
            "queue (shared) vs static:4 (shared): p95 wait 0.04 s vs 0.04 s (about the same),"
            " at 0.50x the replica-seconds",
            "queue (shared) vs cpu-hpa@least: p95 wait 0.04 s vs 100 s (2,500x lower),"
            " at 1.0x the replica-seconds",
            "our stack (queue behind the router's shared queue) vs the seed's"
            " (cpu-hpa behind random routing): p95 wait 0.04 s vs 312 s (7,811x lower),"
            " rejected 0 vs 12, at 0.93x the replica-seconds",
        ]
    )


@pytest.mark.parametrize(
    ("ours", "seed"),
    [
        pytest.param(("queue", "random"), ("cpu-hpa", "random"), id="ours-not-shared"),
        pytest.param(("queue", "shared"), ("cpu-hpa@shared", "shared"), id="seed-not-random"),
        pytest.param(("cpu-hpa@shared", "shared"), ("cpu-hpa", "random"), id="ours-is-cpu-hpa"),
    ],
)
def test_compare_names_the_stacks_only_when_they_are_ours_and_the_seeds(
    ours: tuple[str, str], seed: tuple[str, str]
) -> None:
    line = compare(
        [result(ours[0], summary(), routing=ours[1]), result(*seed[:1], summary(), routing=seed[1])]
    )
    assert "stack" not in line
    assert line.startswith(ours[0])


def test_compare_alone_says_nothing() -> None:
    assert compare([QUEUE]) == ""
    assert compare([]) == ""


@pytest.mark.parametrize(
    ("ours", "theirs", "words"),
    [
        pytest.param((0.0, 100.0), (312.4, 100.0), "(lower), at 1.0x the", id="no-wait-vs-wait"),
        pytest.param((5.0, 100.0), (0.0, 100.0), "(higher), at 1.0x the", id="wait-vs-no-wait"),
        pytest.param((0.0, 0.0), (0.0, 0.0), "(about the same), both at zero", id="all-zero"),
        pytest.param((1.0, 50.0), (3.0, 0.0), "at 50 replica-seconds where b used", id="b-none"),
        pytest.param((math.nan, 1.0), (1.0, 1.0), "(not comparable)", id="nan"),
    ],
)
def test_compare_survives_zero_denominators(
    ours: tuple[float, float], theirs: tuple[float, float], words: str
) -> None:
    a = result("a", summary(wait_p95=ours[0], replica_seconds=ours[1]))
    b = result("b", summary(wait_p95=theirs[0], replica_seconds=theirs[1]))
    assert words in compare([a, b])


def test_json_layout_keys_and_values() -> None:
    meta = {"hardware": "cpu", "duration_seconds": 3600.0, "seed": 7, "scenario": "burst"}
    text = to_json([QUEUE, CPU], meta=meta)
    document = json.loads(text)
    assert list(document) == ["scenario", "seed", "duration_seconds", "hardware", "policies"]
    assert list(document["policies"]) == ["queue", "cpu-hpa"]
    assert document["policies"]["cpu-hpa"] == {
        "signal": "cpu",
        "routing": "random",
        "requests": 1000,
        "served": 988,
        "rejected": 12,
        "queue_wait_mean_seconds": 88.2,
        "queue_wait_p50_seconds": 41.5,
        "queue_wait_p95_seconds": 312.44,
        "queue_wait_p99_seconds": 1234.5,
        "max_queue": 1500,
        "reaction_seconds": None,
        "replica_seconds": 7740.0,
        "scale_events": 3,
    }
    assert list(document["policies"]["queue"]) == ["signal", "routing", *QUEUE.summary.as_dict()]
    assert '"reaction_seconds": null' in text
    assert to_json([QUEUE, CPU], meta=dict(reversed(meta.items()))) == text


def test_json_rounds_floats_and_writes_non_numbers_as_null() -> None:
    odd = result("odd", summary(wait_p50=0.1 + 0.2, wait_p95=-1e-9, wait_p99=math.nan))
    meta = {"scenario": "burst", "trace": Path("traces/day.csv"), "rates": [1 / 3, math.inf]}
    document = json.loads(to_json([odd], meta=meta))
    figures = document["policies"]["odd"]
    assert figures["queue_wait_p50_seconds"] == 0.3
    assert figures["queue_wait_p95_seconds"] == 0.0
    assert figures["queue_wait_p99_seconds"] is None
    assert document["trace"] == "traces/day.csv"
    assert document["rates"] == [0.333, None]
    assert "-0.0" not in to_json([odd], meta=meta)


def test_json_refuses_ambiguous_input() -> None:
    with pytest.raises(ValueError, match="'policies' key"):
        to_json([QUEUE], meta={"policies": []})
    with pytest.raises(ValueError, match="two policies are named 'queue'"):
        to_json([QUEUE, QUEUE], meta={})
    with pytest.raises(TypeError, match="cannot write object"):
        to_json([QUEUE], meta={"what": object()})
