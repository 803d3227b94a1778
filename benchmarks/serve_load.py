"""Bounded load test of `semrec serve` on loopback: POST /recommend at fixed request rates.

.venv/bin/python benchmarks/serve_load.py runs/gowalla-lightgcn [--rates 100 500] \
    [--duration 20] [--query user|history] [--retrieval auto] [--server-threads 1] \
    [--name gowalla-lightgcn]

Starts the server itself (a subprocess on a free port), waits for /health, warms up, then
for each rate sends requests open-loop: request i is due at start + i / rate, whether or not
earlier ones have answered (so a slow server shows up as latency, not as a lower rate).
Latency is measured from the due time to the response, per request. Each rate sends exactly
rate x duration requests and stops by itself (requests unanswered `--timeout` seconds after
the last one was due count as errors). Prints p50/p95/p99 latency and the error count per
rate, the CPU time server and client spent per request, and writes
results/serve-load-<name>.json (command, device, git commit, model, the server's event loop
and HTTP parser). The client (Python asyncio streams over keep-alive connections, on
asyncio's own loop, whose clock is finer than uvloop's 1 ms, with its garbage collector off
while it keeps time) runs on the same machine as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import random
import resource
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from record_result import git_commit
from semrec.atomic import write_text_atomic
from semrec.experiment import cpu_model
from semrec.serving.app import http_stack

RESULTS = Path(__file__).parent / "results"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def model_manifest(path: Path) -> dict[str, Any]:
    model_dir = path / "model" if (path / "config.yaml").is_file() else path
    return json.loads((model_dir / "manifest.json").read_text())


def start_server(args: argparse.Namespace, port: int) -> subprocess.Popen:
    semrec = Path(sys.executable).with_name("semrec")
    command = [str(semrec), "serve", str(args.model), "--port", str(port)]
    command += ["--retrieval", args.retrieval, "--threads", str(args.server_threads)]
    if args.data_dir:
        command += ["--data-dir", str(args.data_dir)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_until_healthy(server: subprocess.Popen, url: str, limit_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited ({server.returncode}):\n{server.stdout.read()}")
        try:
            response = httpx.get(f"{url}/health", timeout=1.0)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"server not healthy after {limit_s} s")


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU seconds of a process (all its threads) so far: this one, or ``pid``
    (Linux /proc; the load on the shared cores, measured rather than inferred)."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: np.ndarray, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if len(values) else None


class Connection:
    """One keep-alive HTTP/1.1 connection speaking just enough of the protocol for this test:
    prebuilt POST requests, responses read by their Content-Length. (An httpx client spent
    most of a core at 500 requests/s, taking it from the server it measured.)"""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def exchange(self, request: bytes) -> int:
        """Send one request, read its whole response; returns the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def encode_requests(bodies: list[dict], port: int) -> list[bytes]:
    requests = []
    for body in bodies:
        payload = json.dumps(body).encode()
        head = (
            f"POST /recommend HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        requests.append(head.encode() + payload)
    return requests


async def run_rate(
    port: int,
    requests: list[bytes],
    rate: float,
    duration: float,
    timeout: float,
    connections: int = 32,
) -> dict[str, Any]:
    """Send rate x duration requests open-loop; latencies in ms from each one's due time.
    A request takes an idle keep-alive connection, or opens one when all are busy."""
    count = round(rate * duration)
    latencies = np.full(count, np.nan)
    failures: dict[str, int] = {}
    # connections are opened before the clock starts, as a client with a pool would have
    # them; more are opened when all are busy
    opened: list[Connection] = [await Connection.open(port) for _ in range(connections)]
    idle = list(opened)
    loop = asyncio.get_running_loop()

    async def one(i: int, due: float) -> None:
        connection = None
        request = requests[i % len(requests)]
        try:
            if idle:
                connection = idle.pop()
                try:
                    status = await asyncio.wait_for(connection.exchange(request), timeout)
                except (ConnectionError, asyncio.IncompleteReadError):
                    # the server closed this keep-alive connection while it was idle: as
                    # HTTP clients do, send the request again on a new connection
                    connection.close()
                    connection = None
            if connection is None:
                connection = await Connection.open(port)
                opened.append(connection)
                status = await asyncio.wait_for(connection.exchange(request), timeout)
            if status == 200:
                latencies[i] = (loop.time() - due) * 1000
            else:
                failures[f"HTTP {status}"] = failures.get(f"HTTP {status}", 0) + 1
            idle.append(connection)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as error:
            failures[type(error).__name__] = failures.get(type(error).__name__, 0) + 1
            if connection is not None:
                connection.close()

    # one loop releases the requests on schedule (creating all tasks up front would make the
    # first ones late before the clock even starts)
    tasks = []
    start = loop.time() + 0.05
    for i in range(count):
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        tasks.append(asyncio.create_task(one(i, due)))
    _, pending = await asyncio.wait(tasks, timeout=timeout + 1.0)
    for task in pending:
        task.cancel()
    if pending:
        failures["unfinished"] = len(pending)
    elapsed = loop.time() - start
    for connection in opened:
        connection.close()
    answered = latencies[np.isfinite(latencies)]
    return {
        "rate_per_s": rate,
        "duration_s": duration,
        "requests": count,
        "ok": len(answered),
        "errors": count - len(answered),
        "error_kinds": failures,
        "connections": {"opened_first": connections, "in_all": len(opened)},
        "elapsed_s": round(elapsed, 2),
        # per second of the schedule: p50 and max of the requests due in it (NaN: none answered)
        "timeline_ms": [
            [
                percentile(second[np.isfinite(second)], 50),
                percentile(second[np.isfinite(second)], 100),
            ]
            for second in np.array_split(latencies, max(1, round(duration)))
        ],
        "latency_ms": {
            "p50": percentile(answered, 50),
            "p95": percentile(answered, 95),
            "p99": percentile(answered, 99),
            "max": percentile(answered, 100),
            "mean": round(float(answered.mean()), 3) if len(answered) else None,
        },
    }


def request_bodies(args: argparse.Namespace, manifest: dict[str, Any]) -> list[dict]:
    rng = random.Random(args.seed)
    if args.query == "user":
        users = manifest["user_ids"]
        return [{"user_id": rng.choice(users), "k": args.k} for _ in range(5000)]
    items = manifest["item_ids"]
    return [
        {"history": rng.sample(items, min(args.history_length, len(items))), "k": args.k}
        for _ in range(2000)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path, help="run directory or saved model directory")
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 500])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--timeout", type=float, default=2.0, help="per request, seconds")
    parser.add_argument("--query", choices=["user", "history"], default="user")
    parser.add_argument("--history-length", type=int, default=20)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--retrieval", choices=["auto", "exact", "faiss"], default="auto")
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--server-threads", type=int, default=1, help="semrec serve --threads")
    parser.add_argument("--warmup", type=int, default=200, help="sequential requests first")
    parser.add_argument("--startup-limit", type=float, default=600.0, help="seconds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", help="result name (default: the model directory's name)")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()

    manifest = model_manifest(args.model)
    bodies = request_bodies(args, manifest)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(args, port)
    try:
        started = time.monotonic()
        health = wait_until_healthy(server, url, args.startup_limit)
        startup_s = time.monotonic() - started
        print(
            f"server up in {startup_s:.1f} s: {health['model']}, {health['n_items']:,} items, "
            f"{health['retrieval']['kind']} retrieval, uvicorn with {http_stack()}"
        )
        with httpx.Client(base_url=url, timeout=args.timeout) as client:
            for body in bodies[: args.warmup]:
                client.post("/recommend", json=body).raise_for_status()
        results = []
        for rate in args.rates:
            requests = encode_requests(bodies, port)
            before = httpx.get(f"{url}/health", timeout=5).json().get("batching")
            server_cpu, client_cpu = cpu_seconds(server.pid), cpu_seconds()
            # no collector pauses in the client while it keeps time: a full collection over
            # the thousands of request tasks stalled it ~140 ms at the same second of every run
            gc.collect()
            gc.disable()
            try:
                result = asyncio.run(run_rate(port, requests, rate, args.duration, args.timeout))
            finally:
                gc.enable()
            result["cpu_ms_per_request"] = {
                "server": round(
                    (cpu_seconds(server.pid) - server_cpu) * 1000 / result["requests"], 3
                ),
                "client": round((cpu_seconds() - client_cpu) * 1000 / result["requests"], 3),
            }
            after = httpx.get(f"{url}/health", timeout=5).json().get("batching")
            if before and after and after["batches"] > before["batches"]:
                result["mean_batch_size"] = round(
                    (after["requests"] - before["requests"])
                    / (after["batches"] - before["batches"]),
                    2,
                )
            latency = result["latency_ms"]
            print(
                f"{rate:>6.0f} req/s x {args.duration:g} s: p50 {latency['p50']} ms, "
                f"p95 {latency['p95']} ms, p99 {latency['p99']} ms, "
                f"errors {result['errors']}/{result['requests']} {result['error_kinds'] or ''}"
                f" mean batch {result.get('mean_batch_size')}, CPU ms per request "
                f"{result['cpu_ms_per_request']}"
            )
            results.append(result)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
    record = {
        "name": args.name or args.model.name,
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "git_commit": git_commit(),
        "device": f"cpu ({os.cpu_count()} cores, {cpu_model()}), client and server on loopback",
        "machine": platform.platform(),
        "model": health["model"],
        "n_items": health["n_items"],
        "n_users": health["n_users"],
        "retrieval": health["retrieval"],
        # the server runs from this interpreter's environment, so it has the same uvicorn stack
        "http_stack": http_stack(),
        "server_threads": args.server_threads,
        "query": args.query,
        "k": args.k,
        "server_startup_s": round(startup_s, 1),
        "results": results,
    }
    if not args.no_write:
        path = RESULTS / f"serve-load-{record['name']}.json"
        write_text_atomic(path, json.dumps(record, indent=1))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
