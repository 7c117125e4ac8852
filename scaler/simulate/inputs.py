"""``scaler simulate``'s options turned into the simulator's inputs, each checked: the
model's parameters, the policies, the override windows and the trace.

A bad value is a ``UsageError`` naming the option and the value (exit 2), raised
before anything runs or is written.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from datetime import UTC, datetime

from scaler.errors import UsageError, quote
from scaler.simulate.bounds import (
    MAX_CPU_TARGET,
    MAX_DURATION,
    MAX_PARALLEL,
    MAX_REPLICAS,
    MAX_REQUESTS,
    check_range,
)
from scaler.simulate.bounds import MAX_TOKENS_PER_SECOND as MAX_TPS
from scaler.simulate.overrides import KINDS, parse_window
from scaler.simulate.policies import SimPolicy, build_policy, parse_routing
from scaler.simulate.replica import ModelParams
from scaler.simulate.sampling import MAX_TOKEN_SPREAD
from scaler.simulate.scenarios import DEFAULT_SCENARIO, build_scenario
from scaler.simulate.types import OverrideWindow, SimulationError, Trace, TraceError
from scaler.simulate.zero import with_companions

# Token rates of a small model (~1-3 B parameters, Q4) on a laptop CPU and on one GPU.
HARDWARE = {
    "cpu": {"prompt_tokens_per_second": 100.0, "completion_tokens_per_second": 15.0},
    "gpu": {"prompt_tokens_per_second": 2000.0, "completion_tokens_per_second": 80.0},
}


def params_from(args: argparse.Namespace) -> ModelParams:
    """The model of Ollama: ``--hardware`` and the options that override it."""
    rates = dict(HARDWARE[args.hardware])
    if args.prompt_tokens_per_second is not None:
        rates["prompt_tokens_per_second"] = args.prompt_tokens_per_second
    if args.completion_tokens_per_second is not None:
        rates["completion_tokens_per_second"] = args.completion_tokens_per_second
    checks = {
        "--parallel": (args.parallel, 1, MAX_PARALLEL),
        "--max-queue": (0 if args.max_queue is None else args.max_queue, 0, MAX_REQUESTS),
        "--cold-start": (args.cold_start, 0, MAX_DURATION),
        "--capacity": (1 if args.capacity is None else args.capacity, 1, MAX_REPLICAS),
        "--prompt-tokens-per-second": (rates["prompt_tokens_per_second"], 1e-9, MAX_TPS),
        "--completion-tokens-per-second": (
            rates["completion_tokens_per_second"],
            1e-9,
            MAX_TPS,
        ),
        "--cpu-hpa-lag": (args.cpu_hpa_lag, 0, MAX_DURATION),
        "--cpu-target": (args.cpu_target, 1, MAX_CPU_TARGET),
        "--step": (args.step, 1, MAX_DURATION),
        "--token-spread": (args.token_spread, 0, MAX_TOKEN_SPREAD),
    }
    try:
        for option, (value, lowest, highest) in checks.items():
            check_range(option, value, lowest, highest)
    except SimulationError as error:
        raise UsageError(str(error)) from error
    params = replace(
        ModelParams(),
        parallel=args.parallel,
        cold_start=args.cold_start,
        prompt_tokens_per_second=rates["prompt_tokens_per_second"],
        completion_tokens_per_second=rates["completion_tokens_per_second"],
        capacity=args.capacity,
    )
    if args.max_queue is not None:  # one bound, for whichever queue requests wait in
        params = replace(params, max_queue=args.max_queue, router_max_queue=args.max_queue)
    return params


def policies_from(args: argparse.Namespace) -> tuple[SimPolicy, ...]:
    """Each ``--policy`` (and ``config`` with ``--config``), then each scale-to-zero
    one again with a minimum of 1 (``with_companions``), to measure what zero saves."""
    names = args.policy
    if names is None:
        names = ["config" if args.config else "queue", "cpu-hpa"]
    if args.config is not None and all(n.partition("@")[0] != "config" for n in names):
        names = [*names, "config"]
    if len(set(names)) != len(names):
        raise UsageError(f"a policy is named twice: {', '.join(names)}")
    try:
        routing = None if args.routing is None else parse_routing(args.routing, what="--routing")
        policies = tuple(
            build_policy(
                name,
                routing=routing,
                config_path=args.config,
                environ=os.environ,
                target=args.target,
                cpu_hpa_lag=args.cpu_hpa_lag,
                cpu_target=args.cpu_target,
                parallel=args.parallel,
                push=args.push,
            )
            for name in names
        )
    except SimulationError as error:
        raise UsageError(str(error)) from error
    for policy in policies:
        most = policy.static_replicas if policy.spec is None else policy.spec.max_replicas
        if most is not None and most > MAX_REPLICAS:  # each pod is modelled one by one
            raise UsageError(
                f"policy {policy.name!r}: {most:,} replicas, more than the "
                f"{MAX_REPLICAS:,} the simulator runs"
            )
    return with_companions(policies)


def windows_from(args: argparse.Namespace) -> tuple[OverrideWindow, ...]:
    """``--outage``, ``--pause`` and ``--pin`` as windows, checked before the trace is
    built; that they end within it is checked once it is."""
    try:
        return tuple(parse_window(kind, text) for kind in KINDS for text in getattr(args, kind))
    except SimulationError as error:
        raise UsageError(str(error)) from error


def trace_from(args: argparse.Namespace) -> Trace:
    """The load: ``--scenario`` (the default), ``--trace`` or ``--from-prometheus``."""
    sources = [args.scenario is not None, args.trace is not None, args.from_prometheus is not None]
    if sum(sources) > 1:
        raise UsageError("give only one of --scenario, --trace and --from-prometheus")
    try:
        if args.trace is not None:
            from scaler.simulate.trace_csv import load_trace_csv

            return load_trace_csv(args.trace, seed=args.seed, token_spread=args.token_spread)
        if args.from_prometheus is not None:
            return _prometheus_trace(args)
        name = args.scenario or DEFAULT_SCENARIO
        return build_scenario(name, seed=args.seed, token_spread=args.token_spread)
    except (SimulationError, TraceError) as error:  # a bad trace is bad input: exit 2
        raise UsageError(str(error)) from error


def _prometheus_trace(args: argparse.Namespace) -> Trace:
    from scaler.simulate.trace_prometheus import load_trace_prometheus, parse_time

    if not args.query:
        raise UsageError("--from-prometheus needs --query (a PromQL rate in requests/s)")
    now = datetime.now(UTC)
    start = parse_time(args.start or "now-1h", now=now)
    end = parse_time(args.end, now=now)
    if end <= start:
        raise UsageError(f"--start {quote(args.start)} is not before --end {quote(args.end)}")
    return load_trace_prometheus(
        args.from_prometheus,
        args.query,
        start=start,
        end=end,
        step=args.step,
        seed=args.seed,
        token_spread=args.token_spread,
    )
