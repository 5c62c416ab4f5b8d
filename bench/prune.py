"""Prune benchmark: how a running server's writers fare while `agentos-sessions prune` deletes.

`python -m bench.prune --engine sqlite,postgresql`. For each engine, in each of --rounds rounds
(default 3), our server (`ours`, 1 worker by default) serves the prune data set (seed.py's
seed_prune: 100,000 sessions last updated 60 days ago, every tenth with 2 runs of ~5 KB, among the
usual 10,000 sessions, updated in the past few hours); wrk drives `create` (32 connections) twice:

- alone, for --duration seconds: the baseline;
- while `agentos-sessions prune --older-than 30d` deletes the 100,000 stale sessions (in batches of
  --batch-size, its default 500, one transaction each, 10 ms apart), started right after wrk. wrk
  runs until prune is done and at least --duration seconds (wrk is given a long -d and stopped
  with SIGINT, on which it stops and reports as at the end of its duration), so that every batch
  falls inside the measurement.

Each round seeds the data afresh (the last one's prune deleted it), starts the server, runs both
and stops the server.

The claim it checks: deleting in batches keeps the writers served; the figure is the p99 of the
creates during the prune against the baseline's. It reports req/s, p50, p99 and errors of both
runs, how long prune took (its whole process, interpreter start included) and what it printed,
and counts afterwards the stale sessions and runs left (none, if it did its job; a prune that fails
is reported with its exit status and output). Each round's figures are printed as it finishes;
the table and chart show the medians over the rounds (req/s, p50, p99, seconds, prune's seconds),
with the errors summed and, of prune, the worst of the rounds: the highest exit status, the fewest
deleted, the most stale rows left, and which rounds failed or left any. Results go to
bench/results/prune.json (the medians and every round) and prune.png. On PostgreSQL the data is
seeded into the database bench_prune (made again each round) in schema `ai`, VACUUM ANALYZEd, and
VACUUM ANALYZEd again after the baseline's creates (as run.py does after every writing operation).
Loopback only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
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
    parser.add_argument("--rounds", type=int, default=3, help="rounds per engine, each seeded afresh (default 3)")
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
    if args.rounds < 1:
        parser.error("--rounds: at least 1")
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
    """The engine's rounds, and their medians (see _median_phase, _worst_prune)."""
    rounds = []
    for number in range(1, args.rounds + 1):
        print(f"{run.ENGINES[engine]}, round {number}/{args.rounds}:", flush=True)
        rounds.append(_round(wrk, args, engine, number))
    return {
        "engine": engine,
        "workers": args.workers,
        "seed_seconds": statistics.median(r["seed_seconds"] for r in rounds),
        "baseline": _median_phase([r["baseline"] for r in rounds]),
        "during_prune": _median_phase([r["during_prune"] for r in rounds]),
        "prune": _worst_prune([r["prune"] for r in rounds]),
        "rounds": rounds,
    }


def _round(wrk: str, args, engine: str, number: int) -> dict:
    """One round: the data seeded afresh, the server started, create alone and during prune."""
    print(
        f"  seeding {args.stale:,} stale sessions ({seed.STALE_AGE_DAYS} days old) and {seed.SESSIONS:,} fresh ones...",
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
    # One log a round, so that a failed round's stays for a look.
    log = args.out / f"prune-ours-{engine}-{number}.log"
    # AgentOS's Python is only for its own server: ours needs none.
    server = run._start("ours", database_url, None, args.workers, log, engine, args.media_dir)
    try:
        run._warm_up(wrk, server, args.connections)
        baseline = run._wrk(wrk, server, "create", "load-base", args.duration, args.connections)
        print(f"  create alone:        {_row(_phase(baseline))}", flush=True)
        if engine == "postgresql":
            run._vacuum([server])
        during, prune = _create_during_prune(wrk, server, args, engine, database_url)
        print(f"  create during prune: {_row(_phase(during))}", flush=True)
    finally:
        run._stop(server)
    prune |= _left(database_url, engine)
    print(f"  {_prune_line(prune)}", flush=True)
    print(f"  prune printed: {prune['output']}", flush=True)
    return {
        "round": number,
        "seed_seconds": seed_seconds,
        "baseline": _phase(baseline),
        "during_prune": _phase(during),
        "prune": prune,
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


def _median_phase(phases: list[dict]) -> dict:
    """The rounds' figures of a phase: medians, but the errors (and requests) summed over them."""
    kinds = phases[0]["error_kinds"]
    return (
        {key: statistics.median(p[key] for p in phases) for key in ("seconds", "rps")}
        | {
            # Over the rounds that answered a request at all (as run.py's); None if none did.
            key: run._median([p[key] for p in phases if p[key] is not None])
            for key in ("p50_ms", "p99_ms")
        }
        | {
            "requests": sum(p["requests"] for p in phases),
            "errors": sum(p["errors"] for p in phases),
            "error_kinds": {kind: sum(p["error_kinds"][kind] for p in phases) for kind in kinds},
        }
    )


def _worst_prune(prunes: list[dict]) -> dict:
    """prune over the rounds: the median of its seconds, but the worst of the rest, so that a
    median hides no round that failed or left stale rows (those rounds are listed, from 1)."""
    deleted = {key: [p[key] for p in prunes] for key in ("sessions_deleted", "runs_deleted")}
    return {
        "command": prunes[0]["command"],
        "seconds": statistics.median(p["seconds"] for p in prunes),
        "exit_status": max(p["exit_status"] for p in prunes),
        # None if a round's prune failed: what it deleted is not known.
        **{key: None if None in counts else min(counts) for key, counts in deleted.items()},
        "stale_sessions_left": max(p["stale_sessions_left"] for p in prunes),
        "stale_runs_left": max(p["stale_runs_left"] for p in prunes),
        # The fewest: a prune that deleted fresh sessions too would show here.
        "sessions_after": min(p["sessions_after"] for p in prunes),
        "failed_rounds": [
            number
            for number, p in enumerate(prunes, 1)
            if p["exit_status"] != 0 or p["stale_sessions_left"] or p["stale_runs_left"]
        ],
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


def _prune_line(prune: dict) -> str:
    """A round's prune: what it deleted, how long it took and what it left."""
    failed = f"FAILED (exit status {prune['exit_status']}); " if prune["exit_status"] != 0 else ""
    return (
        f"prune: {failed}{prune['sessions_deleted']} sessions ({prune['runs_deleted']} runs) deleted in "
        f"{prune['seconds']:.1f} s; left: {prune['stale_sessions_left']} stale sessions, "
        f"{prune['stale_runs_left']} of their runs; {prune['sessions_after']} sessions in all"
    )


def _print_result(result: dict) -> None:
    prune, rounds = result["prune"], len(result["rounds"])
    print(
        f"\n{run.ENGINES[result['engine']]}, {result['workers']} worker(s): create, wrk, median of {rounds} rounds "
        "(errors summed)"
    )
    print(f"{'':14} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'seconds':>8}")
    for label, key in (("alone", "baseline"), ("during prune", "during_prune")):
        phase = result[key]
        print(
            f"{label:14} {run._rate(phase['rps']):>8} {run._ms(phase['p50_ms']):>8} {run._ms(phase['p99_ms']):>8} "
            f"{phase['errors']:7d} {phase['seconds']:8.1f}"
        )
    if prune["failed_rounds"]:
        print(
            f"prune FAILED or left stale rows in round(s) {', '.join(map(str, prune['failed_rounds']))} "
            f"(highest exit status {prune['exit_status']}); see their lines above"
        )
    print(
        f"prune, median of {rounds} rounds: {prune['seconds']:.1f} s; at worst {prune['sessions_deleted']} sessions "
        f"({prune['runs_deleted']} runs) deleted, {prune['stale_sessions_left']} stale sessions and "
        f"{prune['stale_runs_left']} of their runs left, {prune['sessions_after']} sessions in all"
    )


def _settings(args) -> dict:
    return {
        "duration_s": args.duration,
        "rounds": args.rounds,
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
    panels = (("rps", "requests/s (median)"), ("p99_ms", "p99 latency, ms (median)"))
    for ax, (key, label) in zip(axes, panels, strict=True):
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
                f"{run.ENGINES[r['engine']]}\nprune: {_deleted(r['prune'])}, {r['prune']['seconds']:.1f} s"
                for r in results
            ],
        )
    axes[0].legend(fontsize=8, loc="upper center", ncol=2)
    figure.suptitle(
        f"create while `prune --older-than {settings['older_than']}` deletes {settings['stale_sessions']:,} sessions: "
        f"wrk c={settings['connections']}, {settings['workers']} worker(s), {settings['cpus']} CPUs, "
        f"median of {settings['rounds']} rounds",
        fontsize=10,
    )
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _deleted(prune: dict) -> str:
    """The sessions prune deleted, for a label; the rounds it failed in or left stale rows, if any."""
    if prune["failed_rounds"]:
        return f"FAILED in round(s) {', '.join(map(str, prune['failed_rounds']))}"
    return f"{prune['sessions_deleted']:,}"


if __name__ == "__main__":
    sys.exit(main())
