"""Prune benchmark: how a running server's writers fare while `agentos-sessions prune` deletes.

`python -m bench.prune --engine sqlite,postgresql`. For each engine, our server (`ours`, 1 worker
by default) serves the prune data set (seed.py's seed_prune: 100,000 sessions last updated 60 days
ago, every tenth with 2 runs of ~5 KB, among the usual 10,000 sessions, updated in the past few
hours); wrk drives `create` (32 connections) twice:

- alone, for --duration seconds: the baseline;
- while `agentos-sessions prune --older-than 30d` deletes the 100,000 stale sessions (in batches of
  --batch-size, its default 500, one transaction each, 10 ms apart), started right after wrk. wrk
  runs until prune is done and at least --duration seconds (wrk is given a long -d and stopped
  with SIGINT, on which it stops and reports as at the end of its duration), so that every batch
  falls inside the measurement.

The claim it checks: deleting in batches keeps the writers served; the figure is the p99 of the
creates during the prune against the baseline's. It reports req/s, p50, p99 and errors of both
runs, how long prune took (its whole process, interpreter start included) and what it printed,
and counts afterwards the stale sessions and runs left (none, if it did its job; a prune that fails
is reported with its exit status and output). Results go to bench/results/prune.json
and prune.png. On PostgreSQL the data is seeded into the database bench_prune (made again each
run) in schema `ai`, VACUUM ANALYZEd, and VACUUM ANALYZEd again after the baseline's creates (as
run.py does after every writing operation). Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bench import run, seed

HERE = Path(__file__).resolve().parent
PG_DATABASE = "bench_prune"
OLDER_THAN = "30d"
# wrk's -d while prune runs: long enough for any prune; wrk is stopped with SIGINT when prune is done.
LONGEST_PRUNE = 900
# What prune prints for a database when it is done.
PRUNED = re.compile(r"deleted (\d+) sessions \((\d+) runs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration", type=int, default=10, help="seconds of the baseline, and the least of the run during prune"
    )
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--engine", default="sqlite", help="comma-separated, of: sqlite, postgresql (default sqlite)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument(
        "--stale", type=int, default=seed.STALE_SESSIONS, help="stale sessions to seed (default %(default)s)"
    )
    parser.add_argument("--batch-size", type=int, help="prune's --batch-size (default: prune's own, 500)")
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help=f"a database on the PostgreSQL server to use; the bench makes {PG_DATABASE} beside it "
        "(default: %(default)s)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    args = parser.parse_args(argv)
    args.engine = [engine for engine in args.engine.split(",") if engine]
    if not args.engine or set(args.engine) - set(run.ENGINES):
        parser.error(f"--engine: any of {', '.join(run.ENGINES)}")
    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench: wrk not found; install it (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    # The server probes its media storage when it starts: an empty directory will do.
    args.media_dir = (args.out / "prune-media").resolve()
    args.media_dir.mkdir(exist_ok=True)

    results = []
    for engine in args.engine:
        results.append(_run_engine(wrk, args, engine))
        _print_result(results[-1])
    report = {"settings": _settings(args), "engines": results}
    (args.out / "prune.json").write_text(json.dumps(report, indent=2) + "\n")
    _chart(report, args.out / "prune.png")
    print(f"\nresults: {args.out / 'prune.json'}, {args.out / 'prune.png'}")
    return 0


def _run_engine(wrk: str, args, engine: str) -> dict:
    print(
        f"{run.ENGINES[engine]}: seeding {args.stale:,} stale sessions ({seed.STALE_AGE_DAYS} days old) "
        f"and {seed.SESSIONS:,} fresh ones...",
        flush=True,
    )
    started = time.monotonic()
    if engine == "sqlite":
        db_file = args.out / "prune.db"
        seed.seed_prune(db_file, stale=args.stale)
        database_url = f"sqlite:///{db_file}"
    else:
        run._recreate_database(args.pg_url, PG_DATABASE)
        database_url = run._pg_database(args.pg_url, PG_DATABASE)
        seed.seed_prune_postgresql(database_url, schema=run.PG_SCHEMA, stale=args.stale)
    seed_seconds = time.monotonic() - started
    print(f"  seeded in {seed_seconds:.0f} s", flush=True)
    # Written out to disk first, as run.py does: dirty pages left to writeback would hold up the
    # fsync of every commit meanwhile.
    os.sync()
    log = args.out / f"prune-ours-{engine}.log"
    # AgentOS's Python is only for its own server: ours needs none.
    server = run._start("ours", database_url, None, args.workers, log, engine, args.media_dir)
    try:
        run._warm_up(wrk, server, args.connections)
        baseline = run._wrk(wrk, server, "create", "load-base", args.duration, args.connections)
        print(f"  create alone:       {_row(_phase(baseline))}", flush=True)
        if engine == "postgresql":
            run._vacuum([server])
        during, prune = _create_during_prune(wrk, server, args, engine, database_url)
        print(f"  create during prune: {_row(_phase(during))}", flush=True)
    finally:
        run._stop(server)
    return {
        "engine": engine,
        "workers": args.workers,
        "seed_seconds": seed_seconds,
        "baseline": _phase(baseline),
        "during_prune": _phase(during),
        "prune": prune | _left(database_url, engine),
    }


def _create_during_prune(wrk: str, server: dict, args, engine: str, database_url: str) -> tuple[dict, dict]:
    """wrk's create while prune runs, from just before prune starts until it is done (and at least
    --duration seconds); wrk's result and prune's (seconds, output, sessions and runs deleted)."""
    command = run._wrk_command(wrk, server, "create", "load-prune", LONGEST_PRUNE, args.connections)
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        started = time.monotonic()
        executable = shutil.which("agentos-sessions", path=os.path.dirname(sys.executable)) or "agentos-sessions"
        options = ["--older-than", OLDER_THAN, *(["--batch-size", str(args.batch_size)] if args.batch_size else [])]
        prune_command = [executable, "prune", *options, "--database-url", database_url]
        # The server's environment, for what prune reads of it (the schema, the database's id).
        env = {**os.environ, "AGENTOS_SESSIONS_DB_ID": "bench"}
        if engine == "postgresql":
            env["AGENTOS_SESSIONS_DB_SCHEMA"] = run.PG_SCHEMA
        pruned = subprocess.run(
            prune_command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, timeout=LONGEST_PRUNE
        )
        prune_seconds = time.monotonic() - started
        # At least --duration seconds of load in all, as the baseline had.
        time.sleep(max(0.0, started + args.duration - time.monotonic()))
        load.send_signal(signal.SIGINT)
        stdout, stderr = load.communicate(timeout=30)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
    if load.returncode != 0:
        raise subprocess.CalledProcessError(load.returncode, command, stdout, stderr)
    output = pruned.stdout.strip()
    # A prune that fails (e.g. the database stayed locked by the server's writes longer than it
    # waits) is a result too: reported with its exit status and output, not raised.
    counts = PRUNED.search(output) if pruned.returncode == 0 else None
    prune = {
        # As run, but with the URL's password hidden, if it has one.
        "command": " ".join(
            ["agentos-sessions prune", *options, "--database-url", make_url(database_url).render_as_string()]
        ),
        "seconds": prune_seconds,
        "exit_status": pruned.returncode,
        "output": output,
        "sessions_deleted": int(counts[1]) if counts else None,
        "runs_deleted": int(counts[2]) if counts else None,
    }
    return json.loads(stdout.strip().splitlines()[-1]), prune


def _phase(result: dict) -> dict:
    """A wrk run's figures (see ops.lua's done)."""
    seconds = result["duration_us"] / 1e6
    answered = result["requests"] > 0
    return {
        "seconds": seconds,
        "requests": result["requests"],
        "rps": result["requests"] / seconds,
        "p50_ms": result["p50_us"] / 1000 if answered else None,
        "p99_ms": result["p99_us"] / 1000 if answered else None,
        "errors": result["non_2xx"] + result["connect"] + result["read"] + result["write"] + result["timeout"],
        # Which errors: non-2xx answers (e.g. 503 for a database busy too long) against timeouts.
        "error_kinds": {key: result[key] for key in ("non_2xx", "connect", "read", "write", "timeout")},
    }


def _left(database_url: str, engine: str) -> dict:
    """What prune should have left: no stale session, no run of one; and the sessions in all."""
    url = make_url(database_url)
    prefix = f"{run.PG_SCHEMA}." if engine == "postgresql" else ""
    db_engine = create_engine(url)
    with db_engine.connect() as db:
        left = {
            "stale_sessions_left": db.execute(
                text(f"SELECT count(*) FROM {prefix}agno_sessions WHERE session_id LIKE 'stale-%'")
            ).scalar(),
            "stale_runs_left": db.execute(
                text(f"SELECT count(*) FROM {prefix}agno_runs WHERE session_id LIKE 'stale-%'")
            ).scalar(),
            "sessions_after": db.execute(text(f"SELECT count(*) FROM {prefix}agno_sessions")).scalar(),
        }
    db_engine.dispose()
    return left


def _row(phase: dict) -> str:
    return (
        f"{run._rate(phase['rps']):>6} req/s  p50 {run._ms(phase['p50_ms']):>7} ms  "
        f"p99 {run._ms(phase['p99_ms']):>7} ms  errors {phase['errors']}  ({phase['seconds']:.1f} s)"
    )


def _print_result(result: dict) -> None:
    prune = result["prune"]
    print(f"\n{run.ENGINES[result['engine']]}, {result['workers']} worker(s): create, wrk")
    print(f"{'':14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'seconds':>8}")
    for label, key in (("alone", "baseline"), ("during prune", "during_prune")):
        phase = result[key]
        print(
            f"{label:14} {run._rate(phase['rps']):>8} {run._ms(phase['p50_ms']):>8} {run._ms(phase['p99_ms']):>8} "
            f"{phase['errors']:7d} {phase['seconds']:8.1f}"
        )
    if prune["exit_status"] != 0:
        print(f"prune FAILED (exit status {prune['exit_status']}) after {prune['seconds']:.1f} s")
    print(
        f"prune: {prune['sessions_deleted']} sessions ({prune['runs_deleted']} runs) deleted in "
        f"{prune['seconds']:.1f} s; left: {prune['stale_sessions_left']} stale sessions, "
        f"{prune['stale_runs_left']} of their runs; {prune['sessions_after']} sessions in all"
    )
    print(f"prune printed: {prune['output']}")


def _settings(args) -> dict:
    return {
        "duration_s": args.duration,
        "connections": args.connections,
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "timeout_s": run.WRK_TIMEOUT,
        "stale_sessions": args.stale,
        "stale_age_days": seed.STALE_AGE_DAYS,
        "stale_runs": f"{seed.STALE_RUNS} on every {seed.RUNS_EVERY}th",
        "fresh_sessions": seed.SESSIONS,
        "older_than": OLDER_THAN,
        "batch_size": args.batch_size or "prune's default (500)",
        "postgresql": make_url(args.pg_url).render_as_string() if "postgresql" in args.engine else None,
    }


def _chart(report: dict, path: Path) -> None:
    """Requests/s and p99 of create, alone and during prune, per engine, each bar labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings, results = report["settings"], report["engines"]
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    x = range(len(results))
    phases = (("baseline", "create alone", "#9aa5b1"), ("during_prune", "create during prune", "#2f6fb0"))
    for ax, (key, label) in zip(axes, (("rps", "requests/s"), ("p99_ms", "p99 latency, ms")), strict=True):
        for position, (phase, name, color) in enumerate(phases):
            offsets = [i - 0.2 + 0.4 * position for i in x]
            values = [r[phase][key] if r[phase][key] is not None else float("nan") for r in results]
            bars = ax.bar(offsets, values, 0.4, label=name, color=color)
            ax.bar_label(bars, fmt="%.0f" if key == "rps" else "%.1f", fontsize=8)
        ax.set_ylabel(label)
        # Room above the bars for their labels and the legend.
        ax.set_ylim(0, ax.get_ylim()[1] * 1.25)
        ax.set_xticks(
            list(x),
            [
                f"{run.ENGINES[r['engine']]}\nprune {_deleted(r['prune'])} in {r['prune']['seconds']:.1f} s"
                for r in results
            ],
        )
    axes[0].legend(fontsize=8, loc="upper center", ncol=2)
    figure.suptitle(
        f"create while `prune --older-than {settings['older_than']}` deletes {settings['stale_sessions']:,} sessions: "
        f"wrk c={settings['connections']}, {settings['workers']} worker(s), {settings['cpus']} CPUs",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _deleted(prune: dict) -> str:
    """The sessions prune deleted, for a label."""
    if prune["sessions_deleted"] is None:
        return f"FAILED (exit status {prune['exit_status']})"
    return f"{prune['sessions_deleted']:,}"


if __name__ == "__main__":
    sys.exit(main())
