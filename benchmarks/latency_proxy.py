"""A TCP proxy on 127.0.0.1 that puts a round-trip time between a client and one upstream server.

    with LatencyProxy("127.0.0.1", server_port, rtt_ms=50) as proxy:
        ...  # point the client at proxy.url instead of the server

Every byte is held rtt/2 in each direction, so a request/response exchange costs `rtt_ms` more than
without the proxy, and a new connection costs one round trip more before its first byte arrives (as
a TCP handshake across that distance would; TLS is not simulated). Each accepted connection gets its
own upstream connection, so keep-alive works as it would without the proxy; each direction is a
delay line (bytes are timestamped when read and written out in order once due), so pipelined or
streaming data keeps its order and a slow direction never reorders the other.

Bounded: at most `max_connections` at once (more are closed at once), at most `QUEUE_CHUNKS` chunks
held per direction (the reader waits when the line is full), and the proxy stops by itself after
`lifetime` seconds. It runs its own event loop in a daemon thread, so blocking code (subprocesses,
`requests`) can use it.

`python benchmarks/latency_proxy.py --smoke` checks it: the added round trip measured by a ping-pong,
one upstream connection per client connection, bytes in order; generous bounds, not a timing test.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import threading
import time

QUEUE_CHUNKS = 64
CHUNK = 65536
STOP_TIMEOUT = 5.0


class LatencyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, rtt_ms: float, *, max_connections: int = 256,
                 lifetime: float = 1800.0, connect_costs_rtt: bool = True):
        if rtt_ms < 0:
            raise ValueError(f"rtt_ms: must be >= 0 (got {rtt_ms})")
        self.upstream_host, self.upstream_port = upstream_host, upstream_port
        self.rtt = rtt_ms / 1000.0
        self.max_connections = max_connections
        self.lifetime = lifetime
        self.connect_costs_rtt = connect_costs_rtt
        self.port = 0
        self.accepted = 0  # client connections accepted (each one has its own upstream connection)
        self.refused = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._connections: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # Life cycle, from the caller's thread.

    def start(self) -> "LatencyProxy":
        self._thread = threading.Thread(target=self._run, name=f"latency-proxy-{self.upstream_port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(STOP_TIMEOUT) or self._error is not None:
            raise RuntimeError(f"latency proxy did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(STOP_TIMEOUT)

    def __enter__(self) -> "LatencyProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # The proxy's own thread.

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to start(), which raises it
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await asyncio.wait_for(self._stopping.wait(), self.lifetime)
        except asyncio.TimeoutError:
            print(f"latency proxy: stopping after its lifetime of {self.lifetime:.0f}s", file=sys.stderr)
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        accepted_at = self._loop.time()
        if len(self._connections) >= self.max_connections:
            self.refused += 1
            client_writer.close()
            return
        task = asyncio.current_task()
        self._connections.add(task)
        self.accepted += 1
        upstream_writer = None
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
            half = self.rtt / 2
            # The client's first byte leaves once its handshake would have completed (one round trip).
            not_before = accepted_at + (self.rtt if self.connect_costs_rtt else 0.0)
            directions = [
                asyncio.create_task(self._delay_line(client_reader, upstream_writer, half, not_before)),
                asyncio.create_task(self._delay_line(upstream_reader, client_writer, half, accepted_at)),
            ]
            try:
                # Each direction ends at its end of stream; an error in one ends both.
                await asyncio.wait(directions, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for direction in directions:
                    direction.cancel()
                await asyncio.gather(*directions, return_exceptions=True)
        except (ConnectionError, OSError):
            pass  # the upstream refused: the client sees its connection closed, as it would
        except asyncio.CancelledError:
            pass  # the proxy is stopping: every connection is closed below
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    writer.close()
            self._connections.discard(task)

    async def _delay_line(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
                          not_before: float) -> None:
        line: asyncio.Queue = asyncio.Queue(maxsize=QUEUE_CHUNKS)

        async def take_in() -> None:
            while True:
                data = await reader.read(CHUNK)
                await line.put((max(self._loop.time(), not_before) + delay, data))
                if not data:
                    return

        async def give_out() -> None:
            while True:
                due, data = await line.get()
                wait = due - self._loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:  # end of stream, passed on once the bytes before it are out
                    if writer.can_write_eof() and not writer.is_closing():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        taker = asyncio.create_task(take_in())
        try:
            await give_out()
        finally:
            taker.cancel()
            await asyncio.gather(taker, return_exceptions=True)


# --- the self-check -------------------------------------------------------------------------------


class _EchoServer:
    """Echoes every byte back; counts connections."""

    def __init__(self):
        self.connections = 0
        self.port = 0
        self._server = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while data := await reader.read(CHUNK):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self._server.close()


async def _ping_pong(port: int, pings: int) -> tuple[float, list[float]]:
    """(seconds from connect to the first pong, seconds of each later ping-pong) on one connection."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    first = 0.0
    for number in range(pings + 1):
        sent = time.perf_counter()
        writer.write(b"ping %d\n" % number)
        await writer.drain()
        await asyncio.wait_for(reader.readline(), 10)
        if number == 0:
            first = time.perf_counter() - started
        else:
            times.append(time.perf_counter() - sent)
    writer.close()
    return first, times


async def _stream(port: int, size: int) -> bool:
    """Sends `size` numbered bytes in uneven writes while reading the echo; True if all came back in order."""
    payload = bytes((index * 7 + index // 251) % 256 for index in range(size))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        position, step = 0, 1
        while position < size:
            writer.write(payload[position:position + step])
            position += step
            step = step * 3 % 40000 + 1
            await writer.drain()

    sender = asyncio.create_task(send())
    received = await asyncio.wait_for(reader.readexactly(size), 30)
    await sender
    writer.close()
    return received == payload


async def _smoke(rtt_ms: float, pings: int) -> list[tuple[str, bool]]:
    echo = _EchoServer()
    await echo.start()
    rtt = rtt_ms / 1000.0
    checks = []
    try:
        with LatencyProxy("127.0.0.1", echo.port, rtt_ms, lifetime=60) as proxy:
            direct_first, direct = await _ping_pong(echo.port, pings)
            first, proxied = await _ping_pong(proxy.port, pings)
            added = statistics.median(proxied) - statistics.median(direct)
            # Generous: an idle machine adds about a millisecond; a busy one much more, never less.
            checks.append((f"proxy adds one RTT per round trip: +{added * 1000:.1f} ms for {rtt_ms:.0f} ms "
                           f"(within {0.8 * rtt_ms:.0f}..{rtt_ms + 150:.0f})",
                           0.8 * rtt <= added <= rtt + 0.150))
            checks.append((f"a new connection costs one more RTT: first answer after {first * 1000:.1f} ms "
                           f"(>= {1.8 * rtt_ms:.0f})", first >= 1.8 * rtt))
            before = echo.connections
            ordered = await _stream(proxy.port, 2_000_000)
            checks.append(("2 MB through the proxy come back byte for byte in order", ordered))
            checks.append((f"one upstream connection per client connection, kept alive for {pings + 1} "
                           f"exchanges ({proxy.accepted} accepted, {echo.connections - before + 1} upstream)",
                           proxy.accepted == 2 and echo.connections == before + 1 == 3))
    finally:
        echo.close()
    return checks


def smoke(rtt_ms: float = 50.0, pings: int = 10) -> list[tuple[str, bool]]:
    return asyncio.run(_smoke(rtt_ms, pings))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="check the proxy against an echo server")
    parser.add_argument("--rtt", type=float, default=50.0, help="round-trip time to add, in ms (default 50)")
    parser.add_argument("--upstream", help="HOST:PORT to proxy to, until Ctrl-C (or --lifetime)")
    parser.add_argument("--lifetime", type=float, default=600.0, help="seconds before the proxy stops by itself")
    arguments = parser.parse_args(argv)
    if arguments.smoke:
        checks = smoke(arguments.rtt)
        for text, passed in checks:
            print(f"  [{'met ' if passed else 'MISS'}] {text}")
        return 0 if all(passed for _, passed in checks) else 1
    if not arguments.upstream:
        parser.error("give --smoke or --upstream HOST:PORT")
    host, _, port = arguments.upstream.rpartition(":")
    proxy = LatencyProxy(host or "127.0.0.1", int(port), arguments.rtt, lifetime=arguments.lifetime).start()
    print(f"{proxy.url} -> {arguments.upstream} with +{arguments.rtt:.0f} ms RTT", flush=True)
    try:
        proxy._thread.join(arguments.lifetime + STOP_TIMEOUT)
    except KeyboardInterrupt:
        pass
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
