"""What ``scaler simulate`` prints and writes once the run is done.

The table or ``--json`` on stdout; ``--csv`` and ``--plot`` as one batch, both or
neither (``atomic.OutputBatch``). The paths were checked before the run
(``atomic.check_outputs``); a special file that appeared since is refused again.
"""

from __future__ import annotations

import argparse

from scaler.errors import UsageError
from scaler.simulate.atomic import OutputBatch, OutputError
from scaler.simulate.replica import ModelParams
from scaler.simulate.types import PolicyResult, SimulationError, Trace


def write_outputs(
    args: argparse.Namespace,
    trace: Trace,
    params: ModelParams,
    results: list[PolicyResult],
    burst_at: float | None,
) -> None:
    from scaler.simulate.report import compare, format_table, to_json
    from scaler.simulate.zero import zero_notes

    try:
        _write_files(args, trace, results, burst_at)
    except OutputError as error:  # a special file appeared at an output during the run
        raise UsageError(str(error)) from error
    except OSError as error:
        raise SimulationError(
            f"cannot write the outputs, none was written: {error.strerror or error}"
            + (f": {error.filename}" if error.filename else "")
        ) from error
    if args.json:
        meta = {
            "scenario": trace.name,
            "seed": args.seed,
            "duration_seconds": trace.duration,
            "hardware": args.hardware,
            "parallel": args.parallel,
            "max_queue": params.max_queue,
            "router_max_queue": params.router_max_queue,
            "cold_start_seconds": args.cold_start,
            "capacity": args.capacity,
            "burst_at_seconds": burst_at,
        }
        print(to_json(results, meta=meta))
        return
    print(
        f"{trace.name}: {len(trace.arrivals)} requests over {trace.duration:g} s, seed {args.seed}"
    )
    if args.capacity is not None:
        print(f"capacity: {args.capacity} pods run at most; the others stay Pending")
    print(format_table(results))
    line = compare(results)
    if line:
        print(line)
    for note in zero_notes(results):
        print(note)


def _write_files(
    args: argparse.Namespace, trace: Trace, results: list[PolicyResult], burst_at: float | None
) -> None:
    """``--csv`` and ``--plot``, both or neither (``atomic.OutputBatch``)."""
    if args.csv is None and args.plot is None:
        return
    arrivals = trace.arrivals_per_second()
    with OutputBatch() as batch:
        if args.csv is not None:
            from scaler.simulate.timeline_csv import write_timeline_csv

            write_timeline_csv(args.csv, arrivals, results, batch=batch)
        if args.plot is not None:
            from scaler.simulate import plot

            title = (
                f"{trace.name}: {len(trace.arrivals)} requests over {trace.duration / 60:.0f} min"
            )
            plot.write_plot(
                args.plot, arrivals, results, title=title, burst_at=burst_at, batch=batch
            )
