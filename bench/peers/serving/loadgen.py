"""A small keep-alive HTTP/1.1 load generator: the fallback when ``wrk`` is not installed.

Stdlib only (asyncio streams). ``--connections`` connections each send the body, wait
for the whole response, and send again, until ``--duration`` seconds have passed; a
request in flight at the deadline is waited for (wrk abandons it instead). Each request
carries ``X-Request-Id: PREFIX-CONNECTION-N``. It writes the same JSON summary as
``wrk_post.lua`` (latencies in microseconds, measured from the request's write to the
end of its response) and the ids answered with 200 to ``OUT.ids``.

It is itself Python and shares the machine's cores with the server, so its figures are
lower than wrk's; the bench labels them.

Usage: ``python loadgen.py --url http://127.0.0.1:PORT/invocations --body FILE
--connections 16 --duration 10 --prefix c16 --out FILE [--timeout 30]``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import time
from pathlib import Path
from urllib.parse import urlsplit


class Stats:
    def __init__(self) -> None:
        self.latencies_us: list[int] = []
        self.statuses: dict[str, int] = {}
        self.answered: list[str] = []
        self.sent: dict[str, int] = {}
        self.bytes = 0
        self.errors = {"connect": 0, "read": 0, "write": 0, "timeout": 0}


async def _response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], int, bool]:
    """(status, headers, bytes read, keep-alive) of one response."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed")
    size = len(line)
    status = int(line.split(b" ", 2)[1])
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        size += len(line)
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            length = int((await reader.readline()).split(b";")[0], 16)
            chunk = await reader.readexactly(length + 2)
            size += len(chunk)
            if length == 0:
                break
    else:
        length = int(headers.get("content-length", "0"))
        size += len(await reader.readexactly(length))
    return status, headers, size, headers.get("connection", "").lower() != "close"


async def _connection(
    index: int,
    host: str,
    port: int,
    path: str,
    body: bytes,
    prefix: str,
    deadline: float,
    timeout: float,
    stats: Stats,
) -> None:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    ).encode()
    key = str(index)
    stats.sent[key] = 0
    reader = writer = None
    while time.perf_counter() < deadline:
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection(host, port)
            except OSError:
                stats.errors["connect"] += 1
                await asyncio.sleep(0.01)
                continue
        assert reader is not None
        stats.sent[key] += 1
        rid = f"{prefix}-{index}-{stats.sent[key]}"
        started = time.perf_counter_ns()
        try:
            writer.write(head + f"X-Request-Id: {rid}\r\n\r\n".encode() + body)
            await writer.drain()
        except OSError:
            stats.errors["write"] += 1
            writer = None
            continue
        try:
            status, headers, size, keep = await asyncio.wait_for(_response(reader), timeout)
        except TimeoutError:
            stats.errors["timeout"] += 1
            writer.close()
            writer = None
            continue
        except (OSError, ConnectionError, ValueError, IndexError, asyncio.IncompleteReadError):
            stats.errors["read"] += 1
            writer.close()
            writer = None
            continue
        stats.latencies_us.append((time.perf_counter_ns() - started) // 1000)
        stats.bytes += size
        stats.statuses[str(status)] = stats.statuses.get(str(status), 0) + 1
        if status == 200 and "x-request-id" in headers:
            stats.answered.append(headers["x-request-id"])
        if not keep:
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


def _percentile(ordered: list[int], p: float) -> int:
    if not ordered:
        return 0
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


async def _run(args: argparse.Namespace) -> dict[str, object]:
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = Path(args.body).read_bytes()
    stats = Stats()
    started = time.perf_counter()
    deadline = started + args.duration
    await asyncio.gather(
        *(
            _connection(
                i + 1,
                host,
                port,
                parts.path or "/",
                body,
                args.prefix,
                deadline,
                args.timeout,
                stats,
            )
            for i in range(args.connections)
        )
    )
    elapsed = time.perf_counter() - started
    ordered = sorted(stats.latencies_us)
    n = len(ordered)
    mean = sum(ordered) / n if n else 0.0
    stdev = math.sqrt(sum((x - mean) ** 2 for x in ordered) / n) if n else 0.0
    Path(args.out + ".ids").write_text("".join(f"{i}\n" for i in stats.answered))
    return {
        "requests": n,
        "duration_us": int(elapsed * 1e6),
        "bytes": stats.bytes,
        "latency_us": {
            "min": ordered[0] if n else 0,
            "mean": round(mean, 1),
            "max": ordered[-1] if n else 0,
            "stdev": round(stdev, 1),
            "p50": _percentile(ordered, 50),
            "p90": _percentile(ordered, 90),
            "p99": _percentile(ordered, 99),
            "p999": _percentile(ordered, 99.9),
        },
        "socket_errors": stats.errors,
        "status_errors": sum(v for k, v in stats.statuses.items() if int(k) > 399),
        "statuses": stats.statuses,
        "sent": stats.sent,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--prefix", default="r")
    parser.add_argument("--timeout", type=float, default=30.0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    summary = asyncio.run(_run(args))
    Path(args.out).write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
