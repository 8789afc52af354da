"""Load on ``criticlab serve``: K concurrent clients x N requests (one record each).

    python benchmarks/serve_load.py [--critic arithmetic] [--model embedded] [-k 8] [-n 25]

    python benchmarks/serve_load.py --attack [--seconds 10]

Starts a real server on 127.0.0.1 with ``--max-inflight K``, then runs two rounds with
:class:`criticlab.serve.AsyncClient` (no retries): K clients (throughput, p50/p99 latency,
errors) and 2K clients (the 429s it refuses). Every record is distinct; after each round every
200's critique must be in the server's store. Prints one JSON object.

``--attack``: the hostile clients of ``benchmarks/_attacks.py`` (a /get_reward response of
100,000 spaces, 8 MB free-text bodies, 3,000 idle or half-sent connections, bodies cut off half
way, image paths), each alone and then all at once, against the default server with the
arithmetic critic; beside each, the unattacked figures of the same run: ``/health`` p50/p99
from a new connection every 20 ms and a normal critique request's p50/p99. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx2

from criticlab.errors import ModelError
from criticlab.serve import AsyncClient
from criticlab.store import Store


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def record(tag: str) -> dict[str, Any]:
    a, b = len(tag) + 3, 7
    return {"id": tag, "problem": f"{tag}: what is {a} * {b} + 1?",
            "steps": [f"{a} * {b} = {a * b}", f"{a * b} + 1 = {a * b + 1}"]}


async def _round(url: str, clients: int, per_client: int, tag: str) -> dict[str, Any]:
    latencies: list[float] = []
    codes: dict[str, int] = {}
    served: list[str] = []

    async def one_client(k: int) -> None:
        async with AsyncClient(url, retries=0, timeout=600) as c:
            for i in range(per_client):
                rec = record(f"{tag}-{k}-{i}")
                t = time.perf_counter()
                try:
                    await c.critique([rec])
                    latencies.append(time.perf_counter() - t)
                    codes["200"] = codes.get("200", 0) + 1
                    served.append(rec["id"])
                except ModelError as e:
                    code = "429" if "HTTP 429" in str(e) else "error"
                    codes[code] = codes.get(code, 0) + 1
                    if code == "429":
                        await asyncio.sleep(0.05)

    started = time.perf_counter()
    await asyncio.gather(*(one_client(k) for k in range(clients)))
    wall = time.perf_counter() - started
    latencies.sort()

    def pct(p: float) -> float | None:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) \
            if latencies else None

    return {"clients": clients, "requests": clients * per_client, "codes": codes,
            "throughput_rps": round(len(latencies) / wall, 1), "p50_ms": pct(0.5),
            "p99_ms": pct(0.99), "wall_s": round(wall, 2), "served": served}


def attack(url: str, seconds: float) -> None:
    from _attacks import ATTACKS, measure

    rows = [measure(url, [], seconds)]
    rows += [measure(url, [name], seconds) for name in ATTACKS]
    rows.append(measure(url, list(ATTACKS), seconds))
    stats = httpx2.get(url + "/v1/stats", timeout=30).json()
    base = rows[0]
    print(f"{'attack':<24} {'/health p50':>11} {'p99':>8} {'max':>8} {'x p99':>6} "
          f"{'normal p50':>10} {'p99':>8} {'failed':>7}")
    for r in rows:
        ratio = (r["health_p99_ms"] / base["health_p99_ms"]
                 if r["health_p99_ms"] and base["health_p99_ms"] else float("nan"))
        failed = r["failed_probes"]["health"] + r["failed_probes"]["normal"]
        print(f"{r['attack'][:24]:<24} {r['health_p50_ms']!s:>11} {r['health_p99_ms']!s:>8} "
              f"{r['health_max_ms']!s:>8} {ratio:>6.2f} {r['normal_p50_ms']!s:>10} "
              f"{r['normal_p99_ms']!s:>8} {failed:>7}")
    print(json.dumps({"rows": rows, "server_stats": stats}, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--critic", default="arithmetic")
    ap.add_argument("--model", default="embedded")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("-k", type=int, default=8, help="concurrent clients")
    ap.add_argument("-n", type=int, default=25, help="requests per client")
    ap.add_argument("--attack", action="store_true", help="hostile clients (see above)")
    ap.add_argument("--seconds", type=float, default=10.0, help="per attack")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    port, store = _port(), tmp / "store.sqlite"
    env = {k: v for k, v in os.environ.items() if k != "CRITICLAB_TOKEN"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "criticlab.serve", "--critic", args.critic, "--model",
         args.model, "--max-tokens", str(args.max_tokens), "--port", str(port), "--store",
         str(store), *([] if args.attack else ["--max-inflight", str(args.k), "--concurrency",
                                               str(args.k)])],
        env=env, stdout=subprocess.DEVNULL, stderr=(tmp / "server.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx2.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx2.HTTPError:
                time.sleep(0.1)
        if args.attack:
            attack(url, args.seconds)
            return
        rounds = [asyncio.run(_round(url, args.k, args.n, "x1")),
                  asyncio.run(_round(url, 2 * args.k, args.n, "x2"))]
        stats = httpx2.get(url + "/v1/stats", timeout=5).json()
    finally:
        proc.terminate()
        code = proc.wait(60)
        if args.attack:
            log = (tmp / "server.log").read_text(errors="replace")
            print(f"server exit code {code}; tracebacks in its log: {log.count('Traceback')}")
    with Store(store) as db:
        stored = {json.loads(row[0])["critic"] for row in
                  db._db.execute("SELECT result FROM results").fetchall()}
        n_stored = db._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    served = sum(len(r.pop("served")) for r in rounds)
    print(json.dumps({"critic": args.critic, "rounds": rounds, "server_stats": stats,
                      "served_200": served, "stored_critiques": n_stored,
                      "every_200_stored": n_stored >= served, "critics_stored": sorted(stored),
                      "server_exit_code": code}, indent=1))


if __name__ == "__main__":
    main()
