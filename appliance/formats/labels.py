"""What officials read: the kinds of entry, and the columns of the entry export, from the one
message catalogue."""

from __future__ import annotations

from typing import Final

from appliance.i18n import text
from appliance.models import REPORTED_KINDS

# The entry export's columns as (key, catalogue entry of the header), in the order every format
# writes them (and the store's CSV query builds its cells).
ENTRY_COLUMNS: Final = (
    ("entry", "exp_entry"),
    ("day", "exp_day"),
    ("entered", "exp_entered"),
    ("left", "exp_left"),
    ("kind", "exp_kind"),
    ("protocol", "exp_protocol"),
    ("tokens", "exp_tokens"),
    ("name", "exp_name"),
    ("organisation", "exp_org"),
    ("phone", "exp_phone"),
    ("purpose", "exp_purpose"),
    ("clock_synced", "exp_clock"),
)

_CATALOGUE_KEYS = {"app": "with_app", "no_app": "no_app", "manual": "manual"}


def kind_labels(lang: str) -> dict[str, str]:
    """Each reported kind of entry as officials read it in ``lang``."""
    return {kind: text(_CATALOGUE_KEYS[kind], lang) for kind in REPORTED_KINDS}
