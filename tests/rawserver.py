"""A bare asyncio HTTP/1.1 server whose every answer is scripted: to cut a connection
at a chosen moment, which no ASGI server lets an app do.

Each request is read in full (headers and `Content-Length` body) before the script
decides, so "closed" really means: the vendor had the whole request, then the
connection dropped without an answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

OK = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@dataclass
class RawServer:
    """`answer(n)` gives the bytes for the n-th request (from 1), or None to close."""

    answer: Callable[[int], bytes | None]
    received: list[bytes] = field(default_factory=list)
    """Request lines (`POST /x HTTP/1.1`) in arrival order."""
    whole: list[bytes] = field(default_factory=list)
    """Each request as it arrived: request line, headers and body."""
    connections: int = 0
    """Connections accepted so far."""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.received.append(head.split(b"\r\n", 1)[0])
                self.whole.append(head + body)
                reply = self.answer(len(self.received))
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


@asynccontextmanager
async def raw_server(answer: Callable[[int], bytes | None]) -> AsyncIterator[tuple[RawServer, str]]:
    """The server and its base URL (`http://127.0.0.1:PORT`), closed on exit."""
    server = RawServer(answer)
    listening = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listening.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listening.close()
        await listening.wait_closed()
