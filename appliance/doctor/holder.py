"""Doctor's check of the running daemon: which process holds the visit log (the kernel's word,
not the pid written in the lock file) and whether the status beside it is that daemon's."""

from __future__ import annotations

from appliance.config import Config
from appliance.doctor.base import FAIL, PASS, WARN, Check
from appliance.status import FOREIGN, UNREADABLE, read_unit_status
from appliance.store.lock import lock_holder

NAME = "daemon"


def daemon_check(config: Config) -> Check:
    database = config.storage.database
    holder = lock_holder(database)
    where = f"{database}: {holder.describe()}"
    if holder.held is None:
        advice = "run the doctor as root or as the daemon's user"
        if holder.error and "not a plain file" in holder.error:
            return Check(FAIL, NAME, where, f"remove {holder.path}; the daemon makes it again")
        return Check(WARN, NAME, where, advice)
    if not holder.held:
        return Check(WARN, NAME, where, "start it: `systemctl start checkpoint`")
    reading = read_unit_status(config)
    if reading.problem == UNREADABLE:
        return Check(WARN, NAME, f"{where}; its status at {reading.path}: {reading.detail}",
                     "run the doctor as root or as a member of the daemon's group")  # fmt: skip
    if reading.problem == FOREIGN:
        return Check(FAIL, NAME, f"{where}; the status at {reading.path} is not its own:"
                     f" {reading.detail}", f"remove {reading.path}")  # fmt: skip
    if not reading.running:
        return Check(WARN, NAME, f"{where}, but its status at {reading.path} is not fresh",
                     "it writes elsewhere (`[storage] runtime_dir`) or is stuck:"
                     " `journalctl -u checkpoint`")  # fmt: skip
    return Check(PASS, NAME, f"{where}; status at {reading.path}")
