"""Load benchmark: agentos-sessions against AgentOS 3.1.10, side by side, on the same data.

`tox -e bench` runs it. Each server serves its own copy of one SQLite file (see seed.py) with
the same number of uvicorn workers (--workers); wrk (Debian's `wrk`) drives one operation at a
time against one server, and the servers alternate operation by operation, round by round, so
that all see the same machine. Per operation it reports requests/s, p50, p99, errors and server
RSS as medians over the rounds, and the ratio to AgentOS; results go to bench/results/ as JSON
and a PNG chart. Servers (--servers): `agentos` (AgentOS 3.1.10 with SqliteDb), `ours` (the
production configuration: response validation on), `ours-unvalidated` (response validation
off), `ours-jwt` (as `ours`, with JWTs required: HS256, every request carrying a token with
the three sessions scopes) and `ours-logged` (as `ours`, writing its JSON access line per request
to a file, as `serve` does by default; the others log no requests, AgentOS included).
--run-scale 1,8 repeats everything with runs 1x and 8x as large.
Loopback only; every wrk run stops after --duration seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OPERATIONS = ("create", "get", "list", "list_filtered", "runs", "patch", "delete")
SERVERS = ("agentos", "ours", "ours-unvalidated", "ours-jwt", "ours-logged")
# ours-jwt's signing secret, made for each run.
JWT_SECRET = secrets.token_urlsafe(48)
AGENTOS_REQUIREMENTS = [
    "agno==3.1.10",
    "fastapi==0.165.0",
    "uvicorn==0.54.0",
    "SQLAlchemy==2.1.9",
    "greenlet==3.5.6",
    "python-multipart==0.0.34",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all operations (default 3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument(
        "--ops", default=",".join(OPERATIONS), help=f"comma-separated operations (default: {','.join(OPERATIONS)})"
    )
    parser.add_argument("--servers", default="agentos,ours", help=f"comma-separated, of: {', '.join(SERVERS)}")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes per server (default 1)")
    parser.add_argument(
        "--run-scale", default="1", help="comma-separated multipliers of run size, one whole pass each (default 1)"
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    parser.add_argument("--agentos-venv", type=Path, default=REPO / ".bench" / "agentos-venv")
    args = parser.parse_args(argv)
    args.ops = [op for op in args.ops.split(",") if op]
    if unknown := set(args.ops) - set(OPERATIONS):
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    args.servers = [name for name in args.servers.split(",") if name]
    if "agentos" not in args.servers or set(args.servers) - set(SERVERS):
        parser.error(f"--servers: agentos and any of {', '.join(SERVERS[1:])}")
    args.run_scale = [int(scale) for scale in args.run_scale.split(",")]

    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench: wrk not found; install it (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    agentos_python = _agentos_environment(args.agentos_venv)

    sys.path.insert(0, str(REPO))
    from bench.seed import seed

    passes = []
    for run_scale in args.run_scale:
        print(f"seeding 10,000 sessions (1,000 with 20 runs, run scale {run_scale})...", flush=True)
        master = args.out / "seed.db"
        seed(master, run_scale=run_scale)
        servers = {}
        try:
            for name in args.servers:
                db_file = args.out / f"{name}.db"
                shutil.copyfile(master, db_file)
                servers[name] = _start(name, db_file, agentos_python, args.workers)
            for server in servers.values():
                _warm_up(wrk, server, args.connections)
            samples = _measure(wrk, servers, args)
        finally:
            for server in servers.values():
                _stop(server)
        passes.append(_summarise(samples, args, run_scale))

    report = {"settings": _settings(args), "passes": passes}
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    for summary in passes:
        _print_table(summary, args.servers)
    _chart(report, args.out / "results.png")
    print(f"\nresults: {args.out / 'results.json'}, {args.out / 'results.png'}")
    return 0


def _agentos_environment(venv: Path) -> Path:
    """A virtualenv with AgentOS 3.1.10 and its server, made once and reused."""
    python = venv / "bin" / "python"
    marker = venv / "requirements.txt"
    wanted = "\n".join(AGENTOS_REQUIREMENTS)
    if not python.exists() or not marker.exists() or marker.read_text() != wanted:
        print(f"building AgentOS 3.1.10 environment in {venv} ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", *AGENTOS_REQUIREMENTS], check=True)
        marker.write_text(wanted)
    return python


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(name: str, db_file: Path, agentos_python: Path, workers: int) -> dict:
    port = _free_port()
    log = (db_file.parent / f"{name}.log").open("wb")
    if name == "agentos":
        command = [str(agentos_python), str(HERE / "agentos_server.py"), str(db_file), str(port), str(workers)]
        env = dict(os.environ)
    else:
        executable = shutil.which("agentos-sessions", path=os.path.dirname(sys.executable)) or "agentos-sessions"
        command = [
            executable,
            "serve",
            "--port",
            str(port),
            "--database-url",
            f"sqlite:///{db_file}",
            "--workers",
            str(workers),
            *(() if name == "ours-logged" else ("--no-access-log",)),
        ]
        env = {
            **os.environ,
            "AGENTOS_SESSIONS_DB_ID": "bench",
            "AGENTOS_SESSIONS_VALIDATE_RESPONSES": "false" if name == "ours-unvalidated" else "true",
        }
        if name == "ours-jwt":
            env["JWT_VERIFICATION_KEY"] = JWT_SECRET
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=db_file.parent)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{name} server did not start; see {log.name}")
        time.sleep(0.2)
    return {"name": name, "url": url, "process": process, "log": log, "token": _token() if name == "ours-jwt" else ""}


def _token() -> str:
    """A token for ours-jwt, valid for the whole run."""
    import jwt  # installed with agentos-sessions

    claims = {"sub": "bench", "scopes": ["sessions:read", "sessions:write", "sessions:delete"]}
    return jwt.encode({**claims, "exp": int(time.time()) + 86_400}, JWT_SECRET, algorithm="HS256")


def _stop(server: dict) -> None:
    process = server["process"]
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    server["log"].close()


def _rss_mb(pid: int) -> float:
    """Resident memory of a server: its process and, with workers, theirs."""
    total = 0
    for process in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except FileNotFoundError:
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def _children(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            children += [int(child), *_children(int(child))]
    return children


def _wrk(wrk: str, server: dict, op: str, prefix: str, duration: int, connections: int) -> dict:
    command = [
        wrk,
        "-t2",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        "10s",
        "-s",
        str(HERE / "lua" / "ops.lua"),
        server["url"],
        "--",
        op,
        prefix,
        server["token"],
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=duration + 60, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _warm_up(wrk: str, server: dict, connections: int) -> None:
    for op in ("get", "list"):
        _wrk(wrk, server, op, "warm", 2, connections)


def _measure(wrk: str, servers: dict, args) -> list[dict]:
    samples = []
    for round_number in range(args.rounds):
        order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
        for op in args.ops:
            for name in order:
                server = servers[name]
                prefix = f"load-r{round_number}"
                result = _wrk(wrk, server, op, prefix, args.duration, args.connections)
                seconds = result["duration_us"] / 1e6
                sample = {
                    "server": name,
                    "op": op,
                    "round": round_number,
                    "rps": result["requests"] / seconds,
                    "p50_ms": result["p50_us"] / 1000,
                    "p99_ms": result["p99_us"] / 1000,
                    "errors": result["non_2xx"]
                    + result["connect"]
                    + result["read"]
                    + result["write"]
                    + result["timeout"],
                    "rss_mb": _rss_mb(server["process"].pid),
                }
                samples.append(sample)
                print(
                    f"round {round_number + 1}/{args.rounds} {op:14} {name:16} {sample['rps']:8.0f} req/s "
                    f"p50 {sample['p50_ms']:7.1f} ms  p99 {sample['p99_ms']:7.1f} ms  errors {sample['errors']}",
                    flush=True,
                )
    return samples


def _summarise(samples: list[dict], args, run_scale: int) -> dict:
    operations = {}
    for op in args.ops:
        per_server = {}
        for name in args.servers:
            mine = [s for s in samples if s["op"] == op and s["server"] == name]
            per_server[name] = {
                key: statistics.median(s[key] for s in mine) for key in ("rps", "p50_ms", "p99_ms", "rss_mb")
            } | {"errors": sum(s["errors"] for s in mine)}
        for name in args.servers[1:]:
            per_server[name]["ratio_rps"] = per_server[name]["rps"] / per_server["agentos"]["rps"]
        operations[op] = per_server
    return {"run_scale": run_scale, "operations": operations, "samples": samples}


def _settings(args) -> dict:
    return {
        "duration_s": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "cpus": os.cpu_count(),
        "workers": args.workers,
        "servers": args.servers,
        "run_scales": args.run_scale,
    }


def _print_table(summary: dict, servers: list[str]) -> None:
    print(f"\nrun scale {summary['run_scale']}")
    print(f"{'operation':14} {'server':16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'RSS MB':>7}  ratio")
    for op, result in summary["operations"].items():
        for name in servers:
            row = result[name]
            ratio = f"{row['ratio_rps']:.2f}x" if "ratio_rps" in row else ""
            print(
                f"{op:14} {name:16} {row['rps']:8.0f} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} "
                f"{row['errors']:7d} {row['rss_mb']:7.0f}  {ratio}"
            )


LABELS = {
    "agentos": "AgentOS 3.1.10",
    "ours": "agentos-sessions",
    "ours-unvalidated": "agentos-sessions, unvalidated",
    "ours-jwt": "agentos-sessions, JWT",
    "ours-logged": "agentos-sessions, access log",
}
COLORS = {
    "agentos": "#9aa5b1",
    "ours": "#2f6fb0",
    "ours-unvalidated": "#8fb8e0",
    "ours-jwt": "#1d3f66",
    "ours-logged": "#4f9a8a",
}


def _chart(report: dict, path: Path) -> None:
    """Requests/s and p99 per operation for each pass; with several run scales, a row per scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings, passes = report["settings"], report["passes"]
    servers = settings["servers"]
    figure, axes = plt.subplots(2 * len(passes), 1, figsize=(11, 3.6 * 2 * len(passes)), sharex=True, squeeze=False)
    width = 0.8 / len(servers)
    for row, summary in enumerate(passes):
        top, bottom = axes[2 * row][0], axes[2 * row + 1][0]
        ops = list(summary["operations"])
        x = range(len(ops))
        for position, name in enumerate(servers):
            offsets = [i - 0.4 + width * (position + 0.5) for i in x]
            results = [summary["operations"][op][name] for op in ops]
            top.bar(offsets, [r["rps"] for r in results], width, label=LABELS[name], color=COLORS[name])
            bottom.bar(offsets, [r["p99_ms"] for r in results], width, color=COLORS[name])
        top.set_ylabel("requests/s (median)")
        bottom.set_ylabel("p99 latency, ms (median)")
        top.set_title(
            f"run scale {summary['run_scale']}: wrk c={settings['connections']}, {settings['duration_s']} s x "
            f"{settings['rounds']} rounds, SQLite, {settings['workers']} worker(s) each, {settings['cpus']} CPUs"
        )
        top.legend()
        bottom.set_xticks(list(x), ops)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
