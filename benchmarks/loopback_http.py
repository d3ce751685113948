"""A minimal HTTP/1.1 load client and receiver on asyncio streams, for loopback benchmarks.

The relay benchmark shares two cores with the server it measures; a general-purpose client
library would spend more of them on itself than on the server. This one speaks just enough
HTTP/1.1 (Content-Length or chunked bodies, keep-alive) to post events and to receive them.
"""

from __future__ import annotations

import asyncio
import time
import urllib.parse


async def _read_head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return lines[0], headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if headers.get("transfer-encoding", "").lower() == "chunked":
        chunks = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(chunks)
            chunks.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0"))
    return await reader.readexactly(length) if length else b""


class Receiver:
    """Answers 200 to every request and notes when each one arrived, keyed by a header."""

    def __init__(self, key_header: str = "x-bench-id"):
        self.key_header = key_header.lower()
        self.arrivals: dict[str, float] = {}
        self.requests = 0
        self._server: asyncio.base_events.Server | None = None
        self.port = 0
        self._arrival = asyncio.Event()
        self._handlers: set[asyncio.Task] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sink"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        # Keep-alive connections outlive the listening socket; end them so no handler is left behind.
        for writer in list(self._writers):
            writer.close()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def wait_for(self, keys: list[str], timeout: float) -> bool:
        """True once every key has arrived; False if `timeout` seconds pass first."""
        deadline = time.perf_counter() + timeout
        while any(key not in self.arrivals for key in keys):
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return False
            self._arrival.clear()
            try:
                await asyncio.wait_for(self._arrival.wait(), remaining)
            except asyncio.TimeoutError:
                return False
        return True

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        self._handlers.add(handler)
        self._writers.add(writer)
        try:
            while True:
                _, headers = await _read_head(reader)
                arrived = time.perf_counter()
                await _read_body(reader, headers)
                self.requests += 1
                key = headers.get(self.key_header)
                # At-least-once delivery may repeat an event; its first arrival is the latency.
                if key is not None and key not in self.arrivals:
                    self.arrivals[key] = arrived
                    self._arrival.set()
                closing = headers.get("connection", "").lower() == "close"
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
                             + (b"Connection: close\r\n" if closing else b"") + b"\r\n")
                await writer.drain()
                if closing:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the sender went away; nothing is owed to it
        finally:
            writer.close()
            self._writers.discard(writer)
            self._handlers.discard(handler)


async def _until_closed(reader: asyncio.StreamReader) -> None:
    while await reader.read(65536):
        pass


class HangingReceiver:
    """Reads each request's head and never answers: a receiver that hangs, as a stuck one would.

    Holds at most `max_held` connections (later ones are closed at once); stop() closes them all.
    """

    def __init__(self, max_held: int = 2000):
        self.max_held = max_held
        self.requests = 0
        self.held = 0
        self.most_held = 0
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._stopping = asyncio.Event()
        self._handlers: set[asyncio.Task] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hang"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        self._stopping.set()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.held >= self.max_held or self._stopping.is_set():
            writer.close()
            return
        handler = asyncio.current_task()
        self._handlers.add(handler)
        self.held += 1
        self.most_held = max(self.most_held, self.held)
        try:
            await _read_head(reader)
            self.requests += 1
            # Until stop(), or until the sender gives up and closes (the body and anything else are ignored).
            waits = [asyncio.create_task(self._stopping.wait()), asyncio.create_task(_until_closed(reader))]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        except (asyncio.IncompleteReadError, ConnectionError):
            return  # the sender gave up waiting
        finally:
            self.held -= 1
            writer.close()
            self._handlers.discard(handler)


class ConnectionPool:
    """Keep-alive connections to one host; a request waits for a free connection."""

    def __init__(self, base_url: str, size: int):
        parsed = urllib.parse.urlsplit(base_url)
        self.host, self.port = parsed.hostname, parsed.port
        self.size = size
        self._idle: asyncio.Queue = asyncio.Queue()
        self._opened = 0

    async def _connection(self, fresh: bool = False):
        """(reader, writer), and whether the connection was used before."""
        if fresh or (self._idle.empty() and self._opened < self.size):
            self._opened += 1
            try:
                return await asyncio.open_connection(self.host, self.port), False
            except BaseException:
                self._opened -= 1
                raise
        return await self._idle.get(), True

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        head = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}", f"Content-Length: {len(body)}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        (reader, writer), reused = await self._connection()
        try:
            return await self._exchange(reader, writer, request)
        except (ConnectionError, asyncio.IncompleteReadError) as error:
            if not reused or getattr(error, "partial", b""):
                raise
            # The server closed a connection that sat idle past its keep-alive timeout before it read
            # this request: sent once more on a new connection, as HTTP clients do.
            (reader, writer), _ = await self._connection(fresh=True)
            return await self._exchange(reader, writer, request)

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        request: bytes) -> tuple[int, bytes]:
        try:
            writer.write(request)
            await writer.drain()
            status_line, response_headers = await _read_head(reader)
            response_body = await _read_body(reader, response_headers)
        except BaseException:
            writer.close()
            self._opened -= 1
            raise
        if response_headers.get("connection", "").lower() == "close":
            writer.close()
            self._opened -= 1
        else:
            self._idle.put_nowait((reader, writer))
        return int(status_line.split(" ", 2)[1]), response_body

    async def close(self) -> None:
        while not self._idle.empty():
            _, writer = self._idle.get_nowait()
            writer.close()
