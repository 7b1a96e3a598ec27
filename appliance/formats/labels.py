"""What officials read for the kinds of entry, from the one message catalogue."""

from __future__ import annotations

from appliance.i18n import text
from appliance.models import REPORTED_KINDS

_CATALOGUE_KEYS = {"app": "with_app", "no_app": "no_app", "manual": "manual"}


def kind_labels(lang: str) -> dict[str, str]:
    """Each reported kind of entry as officials read it in ``lang``."""
    return {kind: text(_CATALOGUE_KEYS[kind], lang) for kind in REPORTED_KINDS}
