"""The load: one thread and one keep-alive HTTP connection per simulated worker."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit

from pool.common import _ANSWER_NAME, _CSRF_INPUT, _TASK_PATH, LABELS, PASSWORD, log


@dataclass
class Stats:
    lat: dict[str, list[float]] = field(default_factory=lambda: {"page": [], "submit": [], "start": []})
    errors: Counter[str] = field(default_factory=Counter)
    submits_ok: int = 0
    answers_ok: int = 0
    refused: int = 0
    no_work: int = 0
    reconnects: int = 0

    def merge(self, other: Stats) -> None:
        for k, v in other.lat.items():
            self.lat.setdefault(k, []).extend(v)
        self.errors.update(other.errors)
        self.submits_ok += other.submits_ok
        self.answers_ok += other.answers_ok
        self.refused += other.refused
        self.no_work += other.no_work
        self.reconnects += other.reconnects


@dataclass
class Plan:
    host: str
    port: int
    job_id: int
    deadline: float = 0.0
    pace_seconds: float = 0.0  # minimum seconds between one worker's submits (0 = as fast as possible)
    think_seconds: float = 0.0
    sessions: dict[str, dict[str, str]] = field(default_factory=dict)  # username -> cookies (reused)
    flow: str = "json"


class Response:
    __slots__ = ("body", "location", "status")

    def __init__(self, status: int, location: str, body: bytes) -> None:
        self.status, self.location, self.body = status, location, body


def _task_form(body: bytes) -> tuple[str, dict[str, str]] | None:
    """(csrf token, {answer-<item>: label}) from a task page, choosing each item's first label."""
    csrf = _CSRF_INPUT.search(body)
    answers: dict[str, str] = {}
    for item_id, label in _ANSWER_NAME.findall(body):
        answers.setdefault(f"answer-{item_id.decode()}", label.decode())
    if not csrf or not answers:
        return None
    return csrf.group(1).decode(), answers


def _path_of(location: str) -> str:
    return urlsplit(location).path or location


# ---------------------------------------------------------------------------------------------
# Client 1: threads + http.client keep-alive connections (stdlib)
# ---------------------------------------------------------------------------------------------


class ThreadClient:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.conn = http.client.HTTPConnection(plan.host, plan.port, timeout=30)
        self.cookies: dict[str, str] = {}
        self.stats = Stats()

    def request(self, method: str, path: str, form: dict[str, str] | None = None) -> Response:
        headers = {"Host": f"{self.plan.host}:{self.plan.port}"}
        if self.plan.flow == "json" and path.startswith("/work/"):
            headers["Accept"] = "application/json"
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.stats.reconnects += 1
                if attempt:
                    raise
        for header in resp.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for key, morsel in jar.items():
                if morsel.value == "" or morsel["max-age"] == "0":
                    self.cookies.pop(key, None)
                else:
                    self.cookies[key] = morsel.value
        return Response(resp.status, resp.headers.get("Location", ""), data)

    def login(self, username: str, cached: dict[str, str] | None = None) -> bool:
        """Log in; reuse ``cached`` cookies when the server still accepts them. True if reused."""
        if cached:
            self.cookies.update(cached)
            if self.request("GET", "/work/").status == 200:
                return True
            self.cookies.clear()
        page = self.request("GET", "/accounts/login/")
        csrf = _CSRF_INPUT.search(page.body)
        if page.status != 200 or not csrf:
            raise RuntimeError(f"login page: HTTP {page.status}")
        resp = self.request(
            "POST",
            "/accounts/login/",
            {"csrfmiddlewaretoken": csrf.group(1).decode(), "username": username, "password": PASSWORD},
        )
        if resp.status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"login of {username} failed: HTTP {resp.status}")
        return False

    def timed(self, kind: str, method: str, path: str, form: dict[str, str] | None = None) -> Response | None:
        started = time.perf_counter()
        try:
            resp = self.request(method, path, form)
        except (OSError, http.client.HTTPException) as exc:
            self.stats.errors[f"{kind}:{type(exc).__name__}"] += 1
            self.conn.close()
            return None
        self.stats.lat[kind].append(time.perf_counter() - started)
        if resp.status >= 400:
            self.stats.errors[f"{kind}:HTTP {resp.status}"] += 1
        return resp

    def run(self) -> None:
        if self.plan.flow == "json":
            self.run_json()
        else:
            self.run_html()

    def _pause(self, next_submit: float) -> float:
        plan = self.plan
        if plan.think_seconds:
            time.sleep(plan.think_seconds)
        if plan.pace_seconds:
            now = time.monotonic()
            if next_submit > now:
                time.sleep(next_submit - now)
            next_submit = max(next_submit, now) + plan.pace_seconds
        return next_submit

    def run_json(self) -> None:
        """What the labeling page's script does: submit, and the response carries the next task."""
        plan = self.plan
        csrf = self.cookies.get("csrftoken", "")
        rng = random.Random(id(self))
        task: dict[str, Any] | None = None
        # Workers do not act in lock-step: each starts at a random phase of its pacing interval.
        next_submit = time.monotonic() + random.random() * self.plan.pace_seconds
        while time.monotonic() < plan.deadline:
            if task is None:
                resp = self.timed("start", "POST", f"/work/jobs/{plan.job_id}/start/", {"csrfmiddlewaretoken": csrf})
                if resp is None or resp.status != 200:
                    continue
                task = json.loads(resp.body).get("next")
                if task is None:
                    self.stats.no_work += 1
                    time.sleep(0.5)
                    continue
            answers = {f"answer-{item['id']}": rng.choice(LABELS) for item in task["items"]}
            next_submit = self._pause(next_submit)
            if time.monotonic() >= plan.deadline:
                break
            resp = self.timed("submit", "POST", task["submit_url"], {"csrfmiddlewaretoken": csrf, **answers})
            if resp is not None and resp.status == 200:
                self.stats.submits_ok += 1
                self.stats.answers_ok += len(answers)
                task = json.loads(resp.body).get("next")
            else:
                self.stats.refused += 1
                task = None

    def run_html(self) -> None:
        plan = self.plan
        task_path: str | None = None
        csrf = self.cookies.get("csrftoken", "")
        # Workers do not act in lock-step: each starts at a random phase of its pacing interval.
        next_submit = time.monotonic() + random.random() * self.plan.pace_seconds
        while time.monotonic() < plan.deadline:
            if task_path is None:
                resp = self.timed("start", "POST", f"/work/jobs/{plan.job_id}/start/", {"csrfmiddlewaretoken": csrf})
                if resp is None or resp.status != 302:
                    continue
                path = _path_of(resp.location)
                if not _TASK_PATH.match(path):
                    self.stats.no_work += 1
                    time.sleep(0.5)
                    continue
                task_path = path
            page = self.timed("page", "GET", task_path)
            if page is None:
                continue
            if page.status != 200:
                task_path = None
                continue
            form = _task_form(page.body)
            if form is None:
                self.stats.errors["page:unparsable"] += 1
                task_path = None
                continue
            token, answers = form
            next_submit = self._pause(next_submit)
            if time.monotonic() >= plan.deadline:
                break
            resp = self.timed("submit", "POST", task_path + "submit/", {"csrfmiddlewaretoken": token, **answers})
            if resp is None:
                task_path = None
                continue
            path = _path_of(resp.location)
            if resp.status == 302 and path != task_path:
                self.stats.submits_ok += 1
                self.stats.answers_ok += len(answers)
                task_path = path if _TASK_PATH.match(path) else None
            else:
                self.stats.refused += 1
                task_path = None


def run_threads(
    plan: Plan, usernames: list[str], seconds: float, login_concurrency: int, on_ready: Any
) -> tuple[Stats, float]:
    clients = [ThreadClient(plan) for _ in usernames]
    log(f"logging in {len(clients)} workers (threads, {login_concurrency} at a time)")
    started = time.perf_counter()
    sem = threading.Semaphore(login_concurrency)
    cache = plan.sessions

    def login(c: ThreadClient, u: str) -> None:
        with sem:
            c.login(u, cache.get(u))
            cache[u] = {k: v for k, v in c.cookies.items() if k in ("sessionid", "csrftoken")}

    threads = [threading.Thread(target=login, args=(c, u)) for c, u in zip(clients, usernames, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log(f"logged in in {time.perf_counter() - started:.1f} s")
    on_ready()
    plan.deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    elapsed = time.perf_counter() - t0
    total = Stats()
    for c in clients:
        total.merge(c.stats)
        c.conn.close()
    return total, elapsed
