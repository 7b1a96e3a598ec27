"""The daemon's run: start the parts, run the ticker and the advertisement source on one
asyncio loop until SIGTERM or SIGINT (or a source that gives up), then decide, flush and close
everything still open, in reverse order."""

from __future__ import annotations

import asyncio
import logging
import signal

from appliance import __version__
from appliance.config import Config
from appliance.daemon import status_doc
from appliance.daemon.build import Parts, build
from appliance.daemon.ticker import Ticker
from appliance.errors import CheckpointError

log = logging.getLogger("checkpoint")


class Daemon:
    """Runs built parts once: ``run()`` returns the process's exit code."""

    def __init__(self, parts: Parts) -> None:
        self.parts = parts
        self.exit_code: int | None = None  # set when the source gives up
        self._stop = asyncio.Event()

    @classmethod
    def from_config(
        cls, config: Config, *, simulate: bool = False, speed: float = 1.0,
        live_simulation: bool = False,
    ) -> Daemon:  # fmt: skip
        return cls(build(config, simulate=simulate, speed=speed, live_simulation=live_simulation))

    def stop(self) -> None:
        """Ask a running daemon to stop (what SIGTERM does)."""
        self._stop.set()

    async def run(self) -> int:
        parts = self.parts
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        log.info(
            "checkpoint %s running: door %s, source %s, database %s",
            __version__, parts.config.checkpoint.id, parts.source.name,
            parts.config.storage.database,
        )  # fmt: skip
        tasks = [asyncio.create_task(Ticker(parts).run(), name="ticker")]
        await parts.source.start()
        tasks.append(asyncio.create_task(self._run_source(), name="source"))
        status_doc.write(parts, "running")
        # Ready: the visit log is open and migrated, the pipeline built, the source started.
        # A full disk is no reason to be restarted (docs/architecture.md §degraded-mode): the
        # door works, its decisions held in memory until the visit log can take them.
        held = " (disk full: held in memory)" if parts.visits.waiting is not None else ""
        parts.notifier.ready(f"recording at {parts.config.checkpoint.id}{held}")
        uploader = parts.sync.uploader
        if uploader is not None:
            uploader.start()
        try:
            await self._stop.wait()
        finally:
            if uploader is not None:
                uploader.stop()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await parts.source.close()
            except Exception:  # nothing may keep the visit log from being flushed
                log.exception("closing the scanner")
            if parts.door is not None:
                parts.door.close()
            lost = self._shutdown()
        if self.exit_code is not None:
            return self.exit_code
        return 1 if lost else 0

    async def _run_source(self) -> None:
        """Run the source; when it gives up (the scanner's healing ladder), stop with its exit
        code for the recovery helper."""
        code = await self.parts.source.run()
        if code is not None:
            self.exit_code = code
            log.error("scanner could not recover: exiting with %d for the recovery helper", code)
            self.stop()

    def _shutdown(self) -> int:
        """Close down; returns how many decided records could not be committed."""
        parts = self.parts
        log.info("stopping: deciding open entries and flushing")
        parts.notifier.stopping()
        try:
            parts.pipeline.close(parts.clock.door_now())
        except Exception:
            parts.errors.add()
            log.exception("error closing the pipeline")
        parts.flusher.flush(force=True)
        lost = parts.visits.pending
        if lost:
            log.error("%d decided entries could not be written: %s", lost, parts.flusher.error)
        status_doc.write(parts, "stopped")
        try:
            parts.visits.close()
        except CheckpointError as exc:
            log.error("%s", exc)
        return lost + parts.visits.dropped  # those were told as they were dropped


def run_daemon(
    config: Config, *, simulate: bool = False, speed: float = 1.0, live_simulation: bool = False
) -> int:
    from appliance.logs import logging_setup
    from appliance.store.lock import take_lock

    logging_setup()
    # Before anything touches the visit log: a second daemon on it would close the first's
    # open stays and record its own lobby into it. Held until this process ends.
    lock = take_lock(config.storage.database)

    async def main() -> int:
        daemon = Daemon.from_config(
            config, simulate=simulate, speed=speed, live_simulation=live_simulation
        )
        return await daemon.run()

    try:
        return asyncio.run(main())
    finally:
        lock.release()
