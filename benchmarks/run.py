"""Command line for the benchmarks: ``python -m benchmarks [core|overhead|...|all] [options]``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import (
    bench_async,
    bench_cluster,
    bench_near,
    bench_redis,
    bench_tags,
    core,
    plugin_overhead,
)
from tests.redis_cluster import redis_cli_binary
from tests.redis_server import redis_server_binary


def _progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="ConnectionCache against cachetools and cacheout, and the plugin's overhead.",
    )
    parser.add_argument(
        "what",
        nargs="?",
        choices=("all", "core", "overhead", "redis", "async", "tags", "near", "cluster"),
        default="all",
        help="which benchmarks to run (default: all)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a fast smoke run: smaller sizes, fewer repeats"
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every size by this factor (e.g. 0.01 for a seconds-long smoke test)",
    )
    parser.add_argument(
        "--overhead-by",
        choices=("cpu", "instructions"),
        default="cpu",
        help="the plugin overhead is judged on CPU time; 'instructions' also counts the "
        "trivial suite's instructions under valgrind as a second figure (a few minutes)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="interleaved rounds of the plugin overhead (default 41; more narrow a noisy median)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be a positive number, got {args.rounds}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    result: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "quick": args.quick,
        "scale": args.scale,
    }
    figures: list[dict[str, Any]] = []
    started = time.perf_counter()

    if args.what in ("all", "core"):
        sizes = core.Sizes.quick() if args.quick else core.Sizes.full()
        if args.scale != 1.0:
            sizes = sizes.scaled(args.scale)
        result["core"] = core.run(sizes, _progress)
        figures += result["core"]["figures"]
        print(core.format_report(result["core"]))
        print()

    if args.what in ("all", "overhead"):
        settings = plugin_overhead.Settings.quick() if args.quick else plugin_overhead.Settings()
        if args.scale != 1.0:
            settings = settings.scaled(args.scale)
        if args.rounds is not None:
            settings = dataclasses.replace(settings, rounds=args.rounds)
        result["overhead"] = plugin_overhead.run(settings, _progress)
        if args.overhead_by == "instructions":
            result["overhead"]["instructions"] = plugin_overhead.count_instructions(
                settings, _progress
            )
        figures += result["overhead"]["figures"]
        print(plugin_overhead.format_report(result["overhead"]))
        print()

    if args.what == "redis" or (args.what == "all" and redis_server_binary() is not None):
        result["redis"] = bench_redis.run(args.quick, _progress)
        figures += result["redis"]["figures"]
        print("ConnectionCache on a throwaway redis-server against raw redis-py")
        print(bench_redis.format_report(result["redis"]))
        print()
    elif args.what == "all":
        print("(no redis-server installed: the Redis figures were not measured)\n")

    if args.what in ("all", "tags"):
        result["tags"] = bench_tags.run(args.quick, _progress)
        figures += result["tags"]["figures"]
        print("Tags, the decorator and typed values")
        print(bench_tags.format_report(result["tags"]))
        print()

    if args.what == "async" or (args.what == "all" and redis_server_binary() is not None):
        result["async"] = bench_async.run(args.quick, _progress)
        figures += result["async"]["figures"]
        print("The awaitable API and batch operations, against raw redis-py, on a throwaway server")
        print(bench_async.format_report(result["async"]))
        print()

    if args.what == "near" or (args.what == "all" and redis_server_binary() is not None):
        result["near"] = bench_near.run(args.quick, _progress)
        figures += result["near"]["figures"]
        print("The near cache on a throwaway redis-server, with real second processes")
        print(bench_near.format_report(result["near"]))
        print()
    cluster_tools = redis_server_binary() is not None and redis_cli_binary() is not None
    if args.what == "cluster" or (args.what == "all" and cluster_tools):
        result["cluster"] = bench_cluster.run(args.quick, _progress)
        figures += result["cluster"]["figures"]
        print("ConnectionCache on a throwaway Redis Cluster (3 masters, 3 replicas), raw redis-py")
        print(bench_cluster.format_report(result["cluster"]))
        print()
    elif args.what == "all":
        print("(no redis-server or redis-cli installed: the cluster figures were not measured)\n")

    if args.quick or args.scale != 1.0:
        print("(smoke run: sizes and repeats differ from the targets'; only a full run decides)")
    failed = [f["name"] for f in figures if not f["passed"]]
    print(
        f"{len(figures) - len(failed)} of {len(figures)} targets met"
        + (f"; missed: {', '.join(failed)}" if failed else "")
        + f" ({time.perf_counter() - started:.0f} s)"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        print(f"results written to {args.json}")
    return 0
