"""The daemon: the composition root that builds the adapters from the configuration and runs
the door pipeline on one asyncio loop.

Advertisements (BlueZ, or the simulated lobby) and door crossings feed ``Pipeline``; a ticker
advances its clock, commits the visit log about once a second and writes the status file. On
SIGTERM or SIGINT everything still open is decided, flushed and closed, in reverse order.
``build`` (config → parts), ``ticker``, ``applier`` (the inbox), ``clocks`` (the clock watch)
and ``status_doc`` are its pieces.
"""

from appliance.daemon.build import Parts, build
from appliance.daemon.runner import Daemon, run_daemon

__all__ = ["Daemon", "Parts", "build", "run_daemon"]
