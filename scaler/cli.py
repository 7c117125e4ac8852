"""The ``scaler`` command. Builds the configuration at the edge and passes it down."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from scaler.config import explain
from scaler.config.report import describe
from scaler.errors import ConfigError, ScalerError, UsageError
from scaler.simulate import command as simulate_command

EXIT_ERROR = 1
EXIT_USAGE = 2


def _config_check(args: argparse.Namespace) -> int:
    # The environment counts as it does for `scaler run`: approve what run would run.
    print("\n".join(describe(explain(args.file, os.environ))))
    return 0


def _run(args: argparse.Namespace) -> int:
    import asyncio

    from scaler import logs
    from scaler.config import load
    from scaler.controller.app import run

    config = load(args.config, os.environ)
    logs.configure(args.log_level)
    return asyncio.run(run(config, kubeconfig=args.kubeconfig))


def _proxy(args: argparse.Namespace) -> int:
    from scaler import logs
    from scaler.proxy.app import serve
    from scaler.proxy.settings import load_proxy_settings

    settings = load_proxy_settings(
        host=args.host,
        port=args.port,
        upstream=args.upstream,
        management_upstream=args.management_upstream,
        parallel=args.parallel,
        max_queue=args.max_queue,
        retry_after=args.retry_after,
        ready_model=args.ready_model,
        num_thread=args.num_thread,
        drain_timeout=args.drain_timeout,
        drain_queued=args.drain_queued,
        **_client_bounds(args),
    )
    logs.configure(args.log_level)
    _serve_until_signal(serve(settings))
    return 0


def _router(args: argparse.Namespace) -> int:
    from scaler import logs
    from scaler.router.server import serve
    from scaler.router.settings import load_router_settings

    settings = load_router_settings(
        host=args.host,
        port=args.port,
        endpoints=args.endpoint,
        service=args.service,
        namespace=args.namespace,
        port_name=args.port_name,
        kubeconfig=args.kubeconfig,
        management_upstream=args.management_upstream,
        parallel=args.parallel,
        max_queue=args.max_queue,
        retry_after=args.retry_after,
        no_pod_wait=args.no_pod_wait,
        cold_start_wait=args.cold_start_wait,
        drain_timeout=args.drain_timeout,
        **_client_bounds(args),
    )
    logs.configure(args.log_level)
    _serve_until_signal(serve(settings))
    return 0


def _serve_until_signal(server: Coroutine[Any, Any, None]) -> None:
    """Run ``server`` until SIGTERM or SIGINT cancels it (it drains on cancel)."""
    import asyncio
    import contextlib
    import signal

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await server

    asyncio.run(main())


_CLIENT_BOUNDS = (
    "max_body",
    "body_memory",
    "body_timeout",
    "header_timeout",
    "idle_timeout",
    "max_connections",
    "upstream_keepalive",
)


def _add_client_bounds(parser: argparse.ArgumentParser) -> None:
    """The proxy's and the router's bounds on clients (docs/proxy.md, Slow clients)."""
    parser.add_argument("--max-body", type=int, help="bytes an inference body may have (64 MiB)")
    parser.add_argument("--body-memory", type=int, help="bytes of bodies held at once (96 MiB)")
    parser.add_argument("--body-timeout", type=float, help="seconds for an inference body (30)")
    parser.add_argument("--header-timeout", type=float, help="seconds for a first head (10)")
    parser.add_argument("--idle-timeout", type=float, help="seconds a connection may idle (75)")
    parser.add_argument("--max-connections", type=int, help="client connections (from fds)")
    parser.add_argument(
        "--upstream-keepalive", type=int, help="seconds before probing a silent upstream (15)"
    )


def _client_bounds(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name in _CLIENT_BOUNDS}


def _add_router(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    router = commands.add_parser(
        "router",
        help="run the shared queue in front of every Ollama pod",
        description="Hold one queue for all Ollama pods; bind each request to a free slot.",
    )
    router.add_argument("--host", help="listen address (0.0.0.0)")
    router.add_argument("--port", type=int, help="listen port (11434)")
    router.add_argument(
        "--endpoint", action="append", metavar="URL", help="a pod (repeat); no discovery"
    )
    router.add_argument("--service", help="the Ollama Service whose EndpointSlices list pods")
    router.add_argument("--namespace", help="the Service's namespace (default)")
    router.add_argument("--port-name", help="the EndpointSlice port (default: its only one)")
    router.add_argument("--kubeconfig", help="default: in-cluster, else $KUBECONFIG")
    router.add_argument("--management-upstream", help="where pull/create/copy/delete/push go")
    router.add_argument("--parallel", type=int, help="slots per pod, OLLAMA_NUM_PARALLEL (1)")
    router.add_argument("--max-queue", type=int, help="requests allowed to wait in all (64)")
    router.add_argument("--retry-after", type=int, help="seconds sent with a 503 (5)")
    router.add_argument(
        "--no-pod-wait", type=float, help="seconds a request waits while no pod is ready (10)"
    )
    router.add_argument(
        "--cold-start-wait",
        type=float,
        help="seconds each request may wait from its arrival while no pod is ready, "
        "for scale to zero (0: off, --no-pod-wait applies)",
    )
    router.add_argument(
        "--drain-timeout",
        type=float,
        help="seconds a stopping router keeps serving its queue before refusing the rest "
        "503 (240; below terminationGracePeriodSeconds)",
    )
    _add_client_bounds(router)
    router.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    router.set_defaults(handler=_router)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="scaler",
        description="Event-driven autoscaler for Ollama on Kubernetes, with HPA-exact rules.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    config = commands.add_parser("config", help="check a configuration file")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    check = config_commands.add_parser(
        "check", help="validate a config file and print the effective policy"
    )
    check.add_argument("file", nargs="?", help="YAML file (default: the built-in config)")
    check.set_defaults(handler=_config_check)
    simulate_command.add_parser(commands)
    run = commands.add_parser(
        "run",
        help="run the controller (in the cluster)",
        description="Poll Prometheus, decide with the HPA's rules, scale the Deployments.",
    )
    run.add_argument("--config", help="YAML file (default: $SCALER_CONFIG, else built-in)")
    run.add_argument("--kubeconfig", help="default: in-cluster, else $KUBECONFIG")
    run.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    run.set_defaults(handler=_run)
    proxy = commands.add_parser(
        "proxy",
        help="run the admission proxy in front of Ollama (a sidecar)",
        description="Queue requests into Ollama's slots, measure the queue, pass the rest.",
    )
    proxy.add_argument("--host", help="listen address (0.0.0.0)")
    proxy.add_argument("--port", type=int, help="listen port (11434)")
    proxy.add_argument("--upstream", help="Ollama (http://127.0.0.1:11435)")
    proxy.add_argument("--management-upstream", help="where pull/create/copy/delete/push go")
    proxy.add_argument("--parallel", type=int, help="OLLAMA_NUM_PARALLEL (1)")
    proxy.add_argument("--max-queue", type=int, help="requests allowed to wait (16)")
    proxy.add_argument("--retry-after", type=int, help="seconds sent with a 503 (5)")
    proxy.add_argument(
        "--num-thread", type=int, help="Ollama's CPU threads: the container's CPU limit in cores"
    )
    proxy.add_argument("--ready-model", help="ready only once this model is loaded")
    proxy.add_argument(
        "--drain-timeout", type=float, help="seconds to finish held answers on SIGTERM (110)"
    )
    proxy.add_argument(
        "--drain-queued",
        choices=("refuse", "serve"),
        help="on SIGTERM, refuse queued requests at once (a router re-sends them) or "
        "serve them within --drain-timeout (no router) (refuse)",
    )
    _add_client_bounds(proxy)
    proxy.add_argument("--log-level", default="info", choices=("debug", "info", "warning"))
    proxy.set_defaults(handler=_proxy)
    _add_router(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            # Here, so a reader that left is seen inside the try, also when argparse
            # exits (--help, a usage error) with text still buffered.
            sys.stdout.flush()
    except BrokenPipeError:
        return _reader_left()


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE if args.command else 0
    try:
        result: int = handler(args)
    except (UsageError, ConfigError) as error:
        print(f"scaler: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ScalerError as error:
        print(f"scaler: {error}", file=sys.stderr)
        return EXIT_ERROR
    return result


def _reader_left() -> int:
    """``scaler config check F | head -3``: the reader closed the pipe. Quietly, as
    the Python docs' note on SIGPIPE does it: point stdout at /dev/null so the
    interpreter's last flush at exit cannot raise again, and exit 1."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
