"""Load benchmark: agentos-sessions against AgentOS 3.1.10, side by side, on the same data.

`tox -e bench` runs it. Each server serves its own copy of the same data (see seed.py) with
the same number of uvicorn workers; wrk (Debian's `wrk`) drives one operation at a time against
one server, and the servers alternate operation by operation, round by round, so that all see
the same machine. Per operation it reports requests/s, p50, p99, errors and server RSS (right after
the run, and its peak during it) as medians over the rounds, and the ratio to AgentOS; with several
workers, how wrk's connections spread over them (round 1). Results go to bench/results/ as JSON and
a PNG chart.

The media operation fetches one 1 MB image over and over (GET /sessions/bench-00000/media/<key>):
agno 3.1.10 itself offloads it (offload_media.py, in AgentOS's venv) into bench/results/media, a
directory both servers are given as their media storage (agno's LocalMediaStorage: the file and its
.meta.json sidecar), and the first run of bench-00000 holds agno's reference to it (seed.py).

The paging operations (`--ops paging`, not in the default run) read a session's runs as pages:
runs_page fetches GET /sessions/bench-00000/runs?limit=20&page=1 (a 20-run session's one page: the
baseline), runs_page_long GET /sessions/bench-long/runs?limit=20&page=250 (the middle of a
10,000-run session) and runs_long GET /sessions/bench-long/runs (all 10,000 runs, ~50 MB: what an
AgentOS client must fetch, AgentOS having no paging). AgentOS 3.1.10 ignores limit and page, so it
answers runs_page_long with all 10,000 runs too: the comparison is of what each server can do, and
the table says how many runs each answered with. Our server reads only the page's rows, so its
runs_page_long should cost what runs_page does, in latency and memory. They run with 4 wrk
connections (AgentOS builds one answer at a time: with 32, each request of 10,000 runs would wait
behind 31 others taking a second or more each) and, runs_page_long and runs_long, a 60 s wrk
timeout, at least 20 s a run, and a wait after it until the server is idle again (it still
builds the answers to the requests wrk left under way); their chart is results-paging.png.

Servers (--servers): `agentos` (AgentOS 3.1.10 with agno's SqliteDb or PostgresDb), `ours` (the
production configuration: response validation on), `ours-unvalidated` (response validation
off), `ours-jwt` (as `ours`, with JWTs required: HS256, every request carrying a token with
the three sessions scopes) and `ours-logged` (as `ours`, writing its JSON access line per request
to a file, as `serve` does by default; the others log no requests, AgentOS included).

A pass is every operation over every server, once per engine (--engine sqlite,postgresql), worker
count (--workers 1,2) and run scale (--run-scale 1,8: runs 1x and 8x as large). On SQLite each
server gets a copy of one seeded file; on PostgreSQL (--pg-url) the data is seeded once into the
database bench_seed, in agno's default schema `ai`, and VACUUM ANALYZEd, and each server gets a
database copied from it (bench_agentos, bench_ours, ...: dropped and made again for each pass;
a copy keeps the statistics), and after each operation that writes (create, patch, delete) every
server's database is VACUUM ANALYZEd, as autovacuum would within a minute (--no-vacuum: not).
With both engines, the summary gives each server's requests/s on PostgreSQL over its requests/s
on SQLite.
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
import urllib.error
import urllib.request
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# In the order they run. delete removes what create made, right after it, so that every read
# meets the same seeded data on every server (a faster server creates more sessions, and would
# otherwise list and count a larger table than a slower one).
# media last: its 1 MB responses may leave the servers' heaps larger, and there that shows in
# its own RSS rather than, in the first round, in every other operation's.
DEFAULT_OPERATIONS = ("create", "delete", "get", "get_empty", "list", "list_filtered", "runs", "patch", "media")
# Paging runs (see the module's docstring): not in the default run, since AgentOS needs seconds
# for each request of bench-long's 10,000 runs; `--ops paging` (or `--ops default,paging`) runs
# them. runs_long last, after media for the same reason as media: a server answers it with ~50 MB
# and its heap may stay that much larger.
PAGING_OPERATIONS = ("runs_page", "runs_page_long", "runs_long")
OPERATIONS = DEFAULT_OPERATIONS + PAGING_OPERATIONS
# Names --ops takes for several operations at once.
OPERATION_GROUPS = {"default": DEFAULT_OPERATIONS, "paging": PAGING_OPERATIONS}
# What the paging operations fetch, over and over (media's path is known once agno has offloaded
# the image). bench-00000 has 20 runs: its one page of 20 is the baseline; page 250 of bench-long
# is runs 4,981 to 5,000 of its 10,000.
FIXED_PATHS = {
    "runs_page": "/sessions/bench-00000/runs?limit=20&page=1",
    "runs_page_long": "/sessions/bench-long/runs?limit=20&page=250",
    "runs_long": "/sessions/bench-long/runs",
}
# wrk's --timeout, seconds: a response slower than this is counted as a timeout error and left
# out of the latencies (wrk's own default, 2 s, would hide AgentOS's slow answers that way).
WRK_TIMEOUT = 10
# The operations whose responses AgentOS builds from 10,000 runs (it ignores limit and page)
# take a second or more each: they get a longer timeout, and fewer connections (below), so that
# their latencies are measured rather than cut off; and at least LONG_MIN_DURATION seconds, so
# that some of them are answered at all (a request still under way when wrk stops is neither
# counted nor an error, and 4 queued requests take 4 s or more).
LONG_OPERATIONS = frozenset({"runs_page_long", "runs_long"})
LONG_WRK_TIMEOUT = 60
LONG_MIN_DURATION = 20
# wrk connections for the paging operations, whatever --connections says: with 32, every
# request of bench-long's runs would queue behind 31 others taking seconds each (AgentOS builds
# one answer at a time). runs_page has the same, so that it is the baseline of runs_page_long.
PAGING_CONNECTIONS = 4
ENGINES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
# agno's PostgresDb default schema: both servers read their tables there.
PG_SCHEMA = "ai"
# The seeded PostgreSQL database each server's copy is made from.
PG_SEED_DATABASE = "bench_seed"
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
    # agno's PostgresDb connects through psycopg 3 (postgresql+psycopg).
    "psycopg[binary]==3.3.9",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all operations (default 3)")
    parser.add_argument(
        "--connections",
        type=int,
        default=32,
        help=f"wrk connections (default 32; the paging operations have {PAGING_CONNECTIONS})",
    )
    parser.add_argument(
        "--ops",
        default="default",
        help=f"comma-separated operations, of: {', '.join(OPERATIONS)}; or groups of them: default "
        f"({','.join(DEFAULT_OPERATIONS)}), paging ({','.join(PAGING_OPERATIONS)}) (default: default)",
    )
    parser.add_argument("--servers", default="agentos,ours", help=f"comma-separated, of: {', '.join(SERVERS)}")
    parser.add_argument(
        "--engine", default="sqlite", help="comma-separated, of: sqlite, postgresql; a whole pass each (default sqlite)"
    )
    parser.add_argument(
        "--workers", default="1", help="comma-separated uvicorn worker processes per server, a pass each (default 1)"
    )
    parser.add_argument(
        "--run-scale", default="1", help="comma-separated multipliers of run size, one whole pass each (default 1)"
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a database on the PostgreSQL server to use; the bench makes its own (bench_*) beside it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="on PostgreSQL, do not VACUUM ANALYZE the servers' databases after create, patch and delete",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results", help="results folder")
    parser.add_argument("--agentos-venv", type=Path, default=REPO / ".bench" / "agentos-venv")
    args = parser.parse_args(argv)
    # Groups expanded in place; each operation once, where it first comes.
    named = [op for op in args.ops.split(",") if op]
    args.ops = list(dict.fromkeys(op for name in named for op in OPERATION_GROUPS.get(name, (name,))))
    if unknown := set(args.ops) - set(OPERATIONS):
        parser.error(f"unknown operations: {', '.join(sorted(unknown))}")
    args.servers = [name for name in args.servers.split(",") if name]
    if "agentos" not in args.servers or set(args.servers) - set(SERVERS):
        parser.error(f"--servers: agentos and any of {', '.join(SERVERS[1:])}")
    args.engine = [engine for engine in args.engine.split(",") if engine]
    if not args.engine or set(args.engine) - set(ENGINES):
        parser.error(f"--engine: any of {', '.join(ENGINES)}")
    args.workers = _counts(parser, "--workers", args.workers)
    args.run_scale = _counts(parser, "--run-scale", args.run_scale)

    wrk = shutil.which("wrk")
    if wrk is None:
        print("bench: wrk not found; install it (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    agentos_python = _agentos_environment(args.agentos_venv)

    sys.path.insert(0, str(REPO))
    from bench.seed import MEDIA_SESSION, seed, seed_postgresql

    # The image is offloaded and seeded whatever --ops says, so that the data set is always the
    # same. Both servers must see the directory at the path the reference names (its bucket).
    args.media_dir = (args.out / "media").resolve()
    image = _offload_image(agentos_python, args.media_dir, MEDIA_SESSION)
    args.media_key = image["media_reference"]["storage_key"]
    args.media_size = image["media_reference"]["size"]
    args.media_path = f"/sessions/{MEDIA_SESSION}/media/{args.media_key}"
    # The one path each of media and the paging operations fetches (ops.lua's <path>).
    args.paths = {**FIXED_PATHS, "media": args.media_path}

    passes = []
    for run_scale in args.run_scale:
        print(
            f"seeding 10,000 sessions (1,000 with 20 runs) and bench-long (10,000 runs), run scale {run_scale}...",
            flush=True,
        )
        if "sqlite" in args.engine:
            seed(args.out / "seed.db", run_scale=run_scale, image=image)
        if "postgresql" in args.engine:
            _recreate_database(args.pg_url, PG_SEED_DATABASE)
            seed_postgresql(
                _pg_database(args.pg_url, PG_SEED_DATABASE), run_scale=run_scale, schema=PG_SCHEMA, image=image
            )
        for engine in args.engine:
            for workers in args.workers:
                print(f"pass: {_pass_title(engine, workers, run_scale)}", flush=True)
                samples = _run_pass(wrk, args, engine, workers, agentos_python)
                passes.append(_summarise(samples, args, engine, workers, run_scale))

    report = {"settings": _settings(args), "passes": passes, "engine_ratios": _engine_ratios(passes, args.servers)}
    (args.out / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    for summary in passes:
        _print_table(summary, args.servers)
    _print_engine_ratios(report["engine_ratios"], args.servers)
    # The paging operations in a chart of their own: their latencies are seconds where the
    # others' are milliseconds, and they run with other wrk settings.
    charts = []
    if set(args.ops) - set(PAGING_OPERATIONS):
        charts.append(args.out / "results.png")
        _chart(report, charts[-1])
    if set(args.ops) & set(PAGING_OPERATIONS):
        charts.append(args.out / "results-paging.png")
        _chart_paging(report, charts[-1])
    print(f"\nresults: {', '.join(str(path) for path in [args.out / 'results.json', *charts])}")
    return 0


def _counts(parser: argparse.ArgumentParser, option: str, value: str) -> list[int]:
    """A comma-separated list of positive whole numbers."""
    try:
        counts = [int(item) for item in value.split(",") if item]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        parser.error(f"{option}: comma-separated positive whole numbers, not {value!r}")
    return counts


def _offload_image(agentos_python: Path, media_dir: Path, session_id: str) -> dict:
    """The seeded image, offloaded into a fresh ``media_dir`` by agno 3.1.10 (offload_media.py):
    as a run holds it, with its media_reference."""
    shutil.rmtree(media_dir, ignore_errors=True)
    result = subprocess.run(
        [str(agentos_python), str(HERE / "offload_media.py"), str(media_dir), session_id],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def _pass_title(engine: str, workers: int, run_scale: int) -> str:
    return f"{ENGINES[engine]}, {workers} worker(s) each, run scale {run_scale}"


def _run_pass(wrk: str, args, engine: str, workers: int, agentos_python: Path) -> list[dict]:
    """Every server on a fresh copy of the seeded data, warmed up, then measured."""
    servers = {}
    try:
        for name in args.servers:
            database_url = _fresh_copy(engine, name, args)
            log = args.out / f"{name}-{engine}-{workers}w.log"
            servers[name] = _start(name, database_url, agentos_python, workers, log, engine, args.media_dir)
        # The copies just written (150 MB each) out to disk first: left dirty, their writeback
        # would hold up the fsync of every commit the servers make while it lasts.
        os.sync()
        for server in servers.values():
            _warm_up(wrk, server, args.connections)
            if "media" in args.ops:
                _check_media(server, args.media_path, args.media_size)
            # How many runs each paging operation answers with, on each server (see _check_runs).
            server["runs_per_response"] = {
                op: _check_runs(server, args.paths[op]) for op in PAGING_OPERATIONS if op in args.ops
            }
        return _measure(wrk, servers, args, settle=engine == "postgresql" and not args.no_vacuum)
    finally:
        for server in servers.values():
            _stop(server)


def _fresh_copy(engine: str, name: str, args) -> str:
    """The URL of a new copy of the seeded data for server ``name``."""
    if engine == "sqlite":
        db_file = args.out / f"{name}.db"
        shutil.copyfile(args.out / "seed.db", db_file)
        return f"sqlite:///{db_file}"
    database = "bench_" + name.replace("-", "_")
    _recreate_database(args.pg_url, database, template=PG_SEED_DATABASE)
    return _pg_database(args.pg_url, database)


def _pg_database(pg_url: str, database: str) -> str:
    """The psycopg 3 URL of ``database`` on the server of ``pg_url``."""
    url = make_url(pg_url).set(drivername="postgresql+psycopg", database=database)
    return url.render_as_string(hide_password=False)


def _recreate_database(pg_url: str, database: str, template: str | None = None) -> None:
    """Drop ``database`` (closing its connections) and create it again, empty or as a copy of ``template``."""
    engine = create_engine(_pg_database(pg_url, make_url(pg_url).database), isolation_level="AUTOCOMMIT")
    with engine.connect() as db:
        db.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        db.exec_driver_sql(f'CREATE DATABASE "{database}"' + (f' TEMPLATE "{template}"' if template else ""))
    engine.dispose()


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


def _start(
    name: str, database_url: str, agentos_python: Path, workers: int, log_path: Path, engine: str, media_dir: Path
) -> dict:
    port = _free_port()
    log = log_path.open("wb")
    if name == "agentos":
        command = [
            str(agentos_python),
            str(HERE / "agentos_server.py"),
            database_url,
            str(port),
            str(workers),
            str(media_dir),
        ]
        env = dict(os.environ)
    else:
        executable = shutil.which("agentos-sessions", path=os.path.dirname(sys.executable)) or "agentos-sessions"
        command = [
            executable,
            "serve",
            "--port",
            str(port),
            "--database-url",
            database_url,
            "--workers",
            str(workers),
            *(() if name == "ours-logged" else ("--no-access-log",)),
        ]
        env = {
            **os.environ,
            "AGENTOS_SESSIONS_DB_ID": "bench",
            "AGENTOS_SESSIONS_VALIDATE_RESPONSES": "false" if name == "ours-unvalidated" else "true",
            "AGENTOS_SESSIONS_MEDIA_STORAGE": media_dir.as_uri(),
        }
        if engine == "postgresql":
            env["AGENTOS_SESSIONS_DB_SCHEMA"] = PG_SCHEMA
        if name == "ours-jwt":
            env["JWT_VERIFICATION_KEY"] = JWT_SECRET
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=log_path.parent)
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
    return {
        "name": name,
        "url": url,
        "port": port,
        "workers": workers,
        "process": process,
        "log": log,
        "token": _token() if name == "ours-jwt" else "",
        "database_url": database_url,
    }


def _check_media(server: dict, path: str, size: int) -> None:
    """One media request before wrk's: the whole image, or the bench stops (a storage that is
    not configured or not found would otherwise be measured as fast 503s or 404s)."""
    request = urllib.request.Request(server["url"] + path)
    if server["token"]:
        request.add_header("Authorization", f"Bearer {server['token']}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    if status != 200 or len(body) != size:
        raise RuntimeError(
            f"{server['name']}: GET {path} answered {status} with {len(body)} bytes, not 200 with {size}: "
            f"{body[:200]!r}"
        )


def _check_runs(server: dict, path: str) -> int:
    """One request of a paging operation before wrk's: how many runs it answers with (AgentOS
    ignores limit and page: all of them), or the bench stops if it does not answer 200 with a
    list (the runs would otherwise be measured as fast 404s)."""
    request = urllib.request.Request(server["url"] + path)
    if server["token"]:
        request.add_header("Authorization", f"Bearer {server['token']}")
    try:
        with urllib.request.urlopen(request, timeout=LONG_WRK_TIMEOUT) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as error:
        status, body = error.code, error.read()
    runs = json.loads(body) if status == 200 else None
    if not isinstance(runs, list):
        raise RuntimeError(f"{server['name']}: GET {path} answered {status}, not 200 with a list: {body[:200]!r}")
    return len(runs)


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
        except (FileNotFoundError, ProcessLookupError):
            continue
        total += next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0)
    return total / 1024


def _children(pid: int) -> list[int]:
    children = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return children
    for task in tasks:
        try:
            listed = (task / "children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            # A thread that ended meanwhile (the servers' thread pools come and go): RSS is
            # sampled while they serve (see _wrk).
            continue
        for child in listed:
            children += [int(child), *_children(int(child))]
    return children


def _connections_per_worker(server: dict) -> list[int]:
    """Established connections to the server's port that each worker process holds, most first.

    Workers are the server's descendants holding its listening socket (uvicorn's supervisor,
    which holds it too but accepts nothing, is left out); sockets are matched by inode between
    /proc/net/tcp and /proc/<pid>/fd.
    """
    listening, established = set(), set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == server["port"]:
                {"0A": listening, "01": established}.get(fields[3], set()).add(fields[9])
    counts = []
    for pid in _children(server["process"].pid):
        sockets = _socket_inodes(pid)
        if sockets & listening:
            counts.append(len(sockets & established))
    return sorted(counts, reverse=True)


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except FileNotFoundError:
        return inodes
    for descriptor in descriptors:
        try:
            target = os.readlink(descriptor)
        except FileNotFoundError:
            continue  # closed meanwhile
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def _wrk_command(
    wrk: str,
    server: dict,
    op: str,
    prefix: str,
    duration: int,
    connections: int,
    path: str = "",
    timeout: int = WRK_TIMEOUT,
) -> list[str]:
    """wrk's command line for one run of ``op`` against ``server`` (ops.lua's arguments after ``--``)."""
    return [
        wrk,
        # Two threads, or one for a single connection (wrk wants a connection per thread).
        f"-t{min(2, connections)}",
        f"-c{connections}",
        f"-d{duration}s",
        "--timeout",
        f"{timeout}s",
        "-s",
        str(HERE / "lua" / "ops.lua"),
        server["url"],
        "--",
        op,
        prefix,
        server["token"],
        path,
    ]


def _wrk(
    wrk: str,
    server: dict,
    op: str,
    prefix: str,
    duration: int,
    connections: int,
    path: str = "",
    timeout: int = WRK_TIMEOUT,
) -> dict:
    command = _wrk_command(wrk, server, op, prefix, duration, connections, path, timeout)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    spread, peak = None, 0.0
    try:
        # The server's RSS five times a second while wrk runs, for its peak: what a server holds
        # to answer (for media, 32 responses of 1 MB in flight) may be given back by the time wrk
        # stops. wrk's output is one short summary, written at the end: the pipes cannot fill.
        while process.poll() is None and time.monotonic() < started + duration + timeout + 60:
            peak = max(peak, _rss_mb(server["process"].pid))
            if spread is None and server["workers"] > 1 and time.monotonic() >= started + duration / 2:
                # wrk opens all its connections at the start and keeps them: halfway, they are spread.
                spread = _connections_per_worker(server)
            time.sleep(0.2)
        stdout, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command, stdout, stderr)
    return json.loads(stdout.strip().splitlines()[-1]) | {"connections_per_worker": spread, "rss_peak_mb": peak}


def _warm_up(wrk: str, server: dict, connections: int) -> None:
    for op in ("get", "list"):
        _wrk(wrk, server, op, "warm", 2, connections)


def _measure(wrk: str, servers: dict, args, *, settle: bool = False) -> list[dict]:
    """Every operation on every server, round after round; with ``settle``, each PostgreSQL
    database is VACUUM ANALYZEd after an operation that writes (see _vacuum)."""
    samples = []
    for round_number in range(args.rounds):
        order = list(servers) if round_number % 2 == 0 else list(reversed(servers))
        for op in args.ops:
            for name in order:
                server = servers[name]
                prefix = f"load-r{round_number}"
                connections, timeout, duration = _wrk_settings(op, args)
                result = _wrk(wrk, server, op, prefix, duration, connections, args.paths.get(op, ""), timeout)
                if op in LONG_OPERATIONS:
                    # The answers to the requests under way when wrk stopped are still being built
                    # (seconds each): that is this run's work, not the next one's.
                    result["rss_peak_mb"] = max(result["rss_peak_mb"], _settle(server, timeout))
                seconds = result["duration_us"] / 1e6
                # No request answered within the run (a request still under way when wrk stops
                # is neither counted nor an error): no latencies, rather than wrk's zeros.
                answered = result["requests"] > 0
                sample = {
                    "server": name,
                    "op": op,
                    "round": round_number,
                    "requests": result["requests"],
                    "rps": result["requests"] / seconds,
                    "p50_ms": result["p50_us"] / 1000 if answered else None,
                    "p99_ms": result["p99_us"] / 1000 if answered else None,
                    "errors": result["non_2xx"]
                    + result["connect"]
                    + result["read"]
                    + result["write"]
                    + result["timeout"],
                    # Right after the run, and the most during it.
                    "rss_mb": _rss_mb(server["process"].pid),
                    "rss_peak_mb": result["rss_peak_mb"],
                    "connections_per_worker": result["connections_per_worker"],
                    # For a paging operation, how many runs a response holds (see _check_runs).
                    "runs_per_response": server.get("runs_per_response", {}).get(op),
                }
                samples.append(sample)
                spread = sample["connections_per_worker"]
                print(
                    f"round {round_number + 1}/{args.rounds} {op:14} {name:16} {_rate(sample['rps']):>8} req/s "
                    f"p50 {_ms(sample['p50_ms']):>7} ms  p99 {_ms(sample['p99_ms']):>7} ms  "
                    f"errors {sample['errors']}  "
                    f"RSS {sample['rss_mb']:.0f} MB (peak {sample['rss_peak_mb']:.0f})"
                    + (f"  connections per worker {_spread(spread)}" if spread else ""),
                    flush=True,
                )
            if op == "delete":
                _remove_leftovers(servers.values())
            if settle and op in WRITING_OPERATIONS:
                _vacuum(servers.values())
    return samples


def _wrk_settings(op: str, args) -> tuple[int, int, int]:
    """wrk's connections, timeout and duration (seconds) for ``op`` (see PAGING_CONNECTIONS,
    LONG_OPERATIONS)."""
    connections = PAGING_CONNECTIONS if op in PAGING_OPERATIONS else args.connections
    if op in LONG_OPERATIONS:
        return connections, LONG_WRK_TIMEOUT, max(args.duration, LONG_MIN_DURATION)
    return connections, WRK_TIMEOUT, args.duration


def _settle(server: dict, longest: float) -> float:
    """Wait (up to ``longest`` seconds) until the server uses under a tenth of a CPU over half a
    second; the peak RSS meanwhile."""
    peak = _rss_mb(server["process"].pid)
    before, deadline = _cpu_seconds(server["process"].pid), time.monotonic() + longest
    while time.monotonic() < deadline:
        time.sleep(0.5)
        peak = max(peak, _rss_mb(server["process"].pid))
        now = _cpu_seconds(server["process"].pid)
        if now - before < 0.05:
            break
        before = now
    return peak


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by a server: its process and, with workers, theirs."""
    ticks = 0
    for process in [pid, *_children(pid)]:
        try:
            # utime and stime, fields 14 and 15; the name (field 2) may hold spaces, so after its ")".
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _rate(rps: float) -> str:
    """Requests/s: whole numbers, but the few a second of the long operations with a decimal."""
    return f"{rps:.0f}" if rps >= 10 else f"{rps:.1f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


# Operations after which PostgreSQL holds rows not yet marked visible to every transaction
# (inserted) or dead ones (updated, deleted), which every later read steps over until a VACUUM.
WRITING_OPERATIONS = frozenset({"create", "patch", "delete"})


def _remove_leftovers(servers) -> None:
    """Delete what create made and delete did not reach in its time (a server that deletes more
    slowly than it creates), so that the reads meet the seeded data alone on every server."""
    for server in servers:
        url = make_url(server["database_url"])
        table = f"{PG_SCHEMA}.agno_sessions" if url.get_backend_name() == "postgresql" else "agno_sessions"
        engine = create_engine(url)
        with engine.begin() as db:
            db.execute(text(f"DELETE FROM {table} WHERE session_id LIKE :created"), {"created": "load-%"})
        engine.dispose()


def _vacuum(servers) -> None:
    """VACUUM ANALYZE each server's PostgreSQL database, as autovacuum does within a minute or so
    of a burst of writes. Without it, a list right after the create run (8,000 or more new rows on
    a table of 10,000) measures PostgreSQL's count(*) stepping over rows not yet all-visible,
    for every server alike (--no-vacuum shows it)."""
    for server in servers:
        engine = create_engine(server["database_url"], isolation_level="AUTOCOMMIT")
        with engine.connect() as db:
            db.exec_driver_sql("VACUUM ANALYZE")
        engine.dispose()


def _spread(counts: list[int]) -> str:
    return "/".join(str(count) for count in counts)


def _ratio(mine: float, theirs: float) -> float | None:
    return mine / theirs if theirs else None


def _summarise(samples: list[dict], args, engine: str, workers: int, run_scale: int) -> dict:
    operations = {}
    for op in args.ops:
        per_server = {}
        for name in args.servers:
            mine = [s for s in samples if s["op"] == op and s["server"] == name]
            per_server[name] = (
                {key: statistics.median(s[key] for s in mine) for key in ("rps", "rss_mb", "rss_peak_mb")}
                | {
                    # Over the rounds that answered a request at all (see _measure); None if none did.
                    key: _median([s[key] for s in mine if s[key] is not None])
                    for key in ("p50_ms", "p99_ms")
                }
                | {
                    "errors": sum(s["errors"] for s in mine),
                    "requests": sum(s["requests"] for s in mine),
                    # Round by round; None with one worker.
                    "connections_per_worker": [s["connections_per_worker"] for s in mine],
                    "runs_per_response": mine[0]["runs_per_response"],
                }
            )
        for name in args.servers[1:]:
            per_server[name]["ratio_rps"] = _ratio(per_server[name]["rps"], per_server["agentos"]["rps"])
        operations[op] = per_server
    return {"engine": engine, "workers": workers, "run_scale": run_scale, "operations": operations, "samples": samples}


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _engine_ratios(passes: list[dict], servers: list[str]) -> list[dict]:
    """Each server's requests/s on PostgreSQL over its own on SQLite, per operation, for each
    worker count and run scale that ran on both engines."""
    by_pass = {(p["engine"], p["workers"], p["run_scale"]): p for p in passes}
    ratios = []
    for (engine, workers, run_scale), postgresql in by_pass.items():
        sqlite = by_pass.get(("sqlite", workers, run_scale))
        if engine != "postgresql" or sqlite is None:
            continue
        for op, results in postgresql["operations"].items():
            for name in servers:
                ratio = _ratio(results[name]["rps"], sqlite["operations"][op][name]["rps"])
                ratios.append(
                    {"workers": workers, "run_scale": run_scale, "op": op, "server": name, "pg_over_sqlite": ratio}
                )
    return ratios


def _settings(args) -> dict:
    return {
        "duration_s": args.duration,
        "rounds": args.rounds,
        "connections": args.connections,
        "cpus": os.cpu_count(),
        "engines": args.engine,
        "workers": args.workers,
        "servers": args.servers,
        "run_scales": args.run_scale,
        "postgresql": make_url(args.pg_url).render_as_string() if "postgresql" in args.engine else None,
        "vacuum_after_writes": "postgresql" in args.engine and not args.no_vacuum,
        # What the media operation fetches.
        "media": {"path": args.media_path, "bytes": args.media_size, "directory": str(args.media_dir)},
        # What the paging operations fetch, and wrk's settings for them.
        "paging": {
            "paths": FIXED_PATHS,
            "connections": PAGING_CONNECTIONS,
            "timeout_s": {op: _wrk_settings(op, args)[1] for op in PAGING_OPERATIONS},
            "duration_s": {op: _wrk_settings(op, args)[2] for op in PAGING_OPERATIONS},
        },
        "timeout_s": WRK_TIMEOUT,
    }


def _times(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}x"


def _print_table(summary: dict, servers: list[str]) -> None:
    spread = summary["workers"] > 1
    print(f"\n{_pass_title(summary['engine'], summary['workers'], summary['run_scale'])}")
    print(
        f"{'operation':14} {'server':16} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'RSS MB':>7} "
        f"{'peak MB':>7}  "
        f"{'ratio':>6}" + ("  connections per worker (round 1)" if spread else "")
    )
    for op, result in summary["operations"].items():
        for name in servers:
            row = result[name]
            ratio = _times(row["ratio_rps"]) if "ratio_rps" in row else ""
            first = row["connections_per_worker"][0]
            line = (
                f"{op:14} {name:16} {_rate(row['rps']):>8} {_ms(row['p50_ms']):>8} {_ms(row['p99_ms']):>8} "
                f"{row['errors']:7d} {row['rss_mb']:7.0f} {row['rss_peak_mb']:7.0f}  {ratio:>6}  "
                f"{_spread(first) if spread and first else ''}"
            )
            print(line.rstrip())
    print("ratio: requests/s over AgentOS's in the same pass; RSS: right after the run; peak: the most during it")
    paging = [op for op in summary["operations"] if op in PAGING_OPERATIONS]
    if paging:
        # The servers do not answer these alike: say what each one returned.
        print(
            f"paging operations: wrk with {PAGING_CONNECTIONS} connections; {', '.join(sorted(LONG_OPERATIONS))}: "
            f"timeout {LONG_WRK_TIMEOUT} s, at least {LONG_MIN_DURATION} s a run. AgentOS 3.1.10 has no paging: "
            "it ignores limit and page and answers with every run of the session"
        )
        for op in paging:
            returned = ", ".join(f"{name} {summary['operations'][op][name]['runs_per_response']}" for name in servers)
            print(f"  {op:14} GET {FIXED_PATHS[op]}: runs a response: {returned}")


def _print_engine_ratios(ratios: list[dict], servers: list[str]) -> None:
    for workers, run_scale in dict.fromkeys((r["workers"], r["run_scale"]) for r in ratios):
        mine = [r for r in ratios if (r["workers"], r["run_scale"]) == (workers, run_scale)]
        print(f"\nPostgreSQL / SQLite, requests/s of each server, {workers} worker(s) each, run scale {run_scale}")
        print(f"{'operation':14}" + "".join(f" {name:>16}" for name in servers))
        for op in dict.fromkeys(r["op"] for r in mine):
            by_server = {r["server"]: r["pg_over_sqlite"] for r in mine if r["op"] == op}
            print(f"{op:14}" + "".join(f" {_times(by_server[name]):>16}" for name in servers))


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
    """Requests/s and p99 per operation, a pair of rows per pass (engine, workers, run scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings, passes = report["settings"], report["passes"]
    servers = settings["servers"]
    figure, axes = plt.subplots(2 * len(passes), 1, figsize=(11, 3.6 * 2 * len(passes)), sharex=True, squeeze=False)
    width = 0.8 / len(servers)
    for row, summary in enumerate(passes):
        top, bottom = axes[2 * row][0], axes[2 * row + 1][0]
        ops = [op for op in summary["operations"] if op not in PAGING_OPERATIONS]
        x = range(len(ops))
        for position, name in enumerate(servers):
            offsets = [i - 0.4 + width * (position + 0.5) for i in x]
            results = [summary["operations"][op][name] for op in ops]
            top.bar(offsets, [r["rps"] for r in results], width, label=LABELS[name], color=COLORS[name])
            bottom.bar(offsets, [r["p99_ms"] for r in results], width, color=COLORS[name])
        top.set_ylabel("requests/s (median)")
        bottom.set_ylabel("p99 latency, ms (median)")
        top.set_title(
            f"{_pass_title(summary['engine'], summary['workers'], summary['run_scale'])}: "
            f"wrk c={settings['connections']}, {settings['duration_s']} s x {settings['rounds']} rounds, "
            f"{settings['cpus']} CPUs"
        )
        top.legend()
        bottom.set_xticks(list(x), ops)
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def _durations(by_op: dict[str, int]) -> str:
    """The seconds of each wrk run, e.g. "3 s (runs_page_long, runs_long: 20 s)"."""
    usual = by_op["runs_page"]
    longer = [op for op, seconds in by_op.items() if seconds != usual]
    return f"{usual} s" + (f" ({', '.join(longer)}: {by_op[longer[0]]} s)" if longer else "")


def _chart_paging(report: dict, path: Path) -> None:
    """The paging operations, a row per pass: requests/s, p50, p99 (logarithmic: a page takes
    milliseconds, 10,000 runs seconds) and peak RSS, each bar labelled with its value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings, passes = report["settings"], report["passes"]
    servers = settings["servers"]
    panels = (
        ("rps", "requests/s (median)", True),
        ("p50_ms", "p50 latency, ms (median)", True),
        ("p99_ms", "p99 latency, ms (median)", True),
        ("rss_peak_mb", "peak RSS, MB (median)", False),
    )
    figure, axes = plt.subplots(len(passes), len(panels), figsize=(18, 4.2 * len(passes)), squeeze=False)
    width = 0.8 / len(servers)
    for row, summary in enumerate(passes):
        ops = [op for op in summary["operations"] if op in PAGING_OPERATIONS]
        x = range(len(ops))
        for column, (key, label, logarithmic) in enumerate(panels):
            ax = axes[row][column]
            for position, name in enumerate(servers):
                offsets = [i - 0.4 + width * (position + 0.5) for i in x]
                # No latency (no request answered in any round): no bar.
                values = [summary["operations"][op][name][key] for op in ops]
                values = [float("nan") if value is None else value for value in values]
                bars = ax.bar(offsets, values, width, label=LABELS[name], color=COLORS[name])
                ax.bar_label(bars, fmt=lambda value: f"{value:,.0f}" if value >= 10 else f"{value:.2g}", fontsize=7)
            if logarithmic:
                ax.set_yscale("log")
            ax.set_ylabel(label)
            ax.set_xticks(list(x), ops)
        axes[row][0].legend(fontsize=8)
        axes[row][0].set_title(
            f"{_pass_title(summary['engine'], summary['workers'], summary['run_scale'])}: "
            f"wrk c={settings['paging']['connections']}, {_durations(settings['paging']['duration_s'])} "
            f"x {settings['rounds']} rounds",
            loc="left",
        )
    figure.text(
        0.5,
        0.005,
        "runs_page: a page of 20 of a 20-run session; runs_page_long: page 250 of 20 of a 10,000-run session; "
        "runs_long: all 10,000 runs. AgentOS 3.1.10 ignores limit and page: it answers runs_page_long "
        "with all 10,000 runs.",
        ha="center",
        fontsize=8,
    )
    figure.tight_layout(rect=(0, 0.02, 1, 1))
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
