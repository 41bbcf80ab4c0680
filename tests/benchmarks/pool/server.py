"""gunicorn on a loopback port, and CPU accounting of it and PostgreSQL."""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

from pool.common import ROOT, log
from pool.data import _server_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(args: argparse.Namespace, port: int) -> subprocess.Popen[bytes]:
    cmd = [
        str(ROOT / ".venv" / "bin" / "gunicorn"),
        "config.wsgi",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(args.gunicorn_workers),
        "--worker-class",
        args.worker_class,
        "--threads",
        str(args.gunicorn_threads),
        "--backlog",
        "256",
        "--keep-alive",
        "5",
        "--log-level",
        "warning",
        "--chdir",
        str(ROOT),
    ]
    if args.gunicorn_config:
        cmd += ["--config", args.gunicorn_config]
    log("starting: " + " ".join(cmd[1:]))
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_server_env(args), start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"gunicorn exited with {proc.returncode}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/accounts/login/")
            status = conn.getresponse().status
            conn.close()
            if status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    stop_gunicorn(proc)
    raise SystemExit("gunicorn did not answer within 30 s")


def stop_gunicorn(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        # utime + stime, plus cutime + cstime: CPU of children that exited (PostgreSQL backends closed
        # when CONN_MAX_AGE runs out are reaped by the postmaster and counted there).
        return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _pids_named(name: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def cpu_snapshot(gunicorn_pid: int) -> dict[int, tuple[str, float]]:
    """CPU seconds per process: gunicorn master + workers, PostgreSQL processes."""
    snap: dict[int, tuple[str, float]] = {}
    for pid in [gunicorn_pid, *_children(gunicorn_pid)]:
        snap[pid] = ("gunicorn", _proc_cpu(pid))
    for pid in _pids_named("postgres"):
        snap[pid] = ("postgres", _proc_cpu(pid))
    return snap


def cpu_delta(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict[str, float]:
    out: Counter[str] = Counter()
    for pid, (kind, cpu) in after.items():
        out[kind] += cpu - before.get(pid, (kind, 0.0))[1]
    return {k: round(v, 2) for k, v in out.items()}


def _machine_cpu() -> tuple[float, float]:
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in parts]
    idle = values[3] + values[4]
    return float(sum(values)), float(idle)
