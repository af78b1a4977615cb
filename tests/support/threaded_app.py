"""An aiohttp app served on 127.0.0.1 from a thread of the test process, on a free port: the
base of the fake model servers (:mod:`tests.support.scripted_model_server`,
:mod:`tests.support.judge_server`). A subclass builds its app in :meth:`make_app`."""

from __future__ import annotations

import asyncio
import threading
from typing import Self

from aiohttp import web

from inference.launcher import free_port


class ThreadedApp:
    """Run with ``with Subclass() as server: server.base_url``."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.port = free_port("127.0.0.1")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def make_app(self) -> web.Application:
        raise NotImplementedError

    def _serve(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._runner = web.AppRunner(self.make_app())
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        self._loop.run_until_complete(site.start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def __enter__(self) -> Self:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(10)
