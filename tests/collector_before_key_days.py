"""The collector as released before visits carried ``key_days``: the same app, whose visit
model lacks the field, so ``extra="forbid"`` refuses it with the 422 that release answered.

    python -m tests.collector_before_key_days serve --database … (as `checkpoint-collector`)

For tests of a unit whose collector has not been upgraded yet (``Collector(module=…)``).
"""

from __future__ import annotations

import sys
from typing import Any

from pydantic import Field, create_model, model_validator

from appliance.records import MAX_RECORDS_PER_BATCH
from collector import models


class _BeforeKeyDays(models.Strict):
    @property
    def key_days(self) -> dict[str, Any]:
        return {}  # what the handler and the checks read of a visit: none, as before


def _older_models() -> None:
    """Replace VisitIn and VisitBatch before the API's routes are built: ``collector.api``,
    which the ``serve`` command imports only when it runs, reads them as it is imported."""
    current = models.VisitIn
    fields: Any = {
        name: (info.annotation, info)
        for name, info in current.model_fields.items()
        if name != "key_days"
    }
    consistent = current.__pydantic_decorators__.model_validators["_consistent"].func
    visit: Any = create_model(
        "VisitIn",
        __base__=_BeforeKeyDays,
        __validators__={"_consistent": model_validator(mode="after")(consistent)},
        **fields,
    )
    models.VisitIn = visit
    models.VisitBatch = create_model(  # type: ignore[misc]
        "VisitBatch",
        __base__=models.Strict,
        records=(list[visit], Field(max_length=MAX_RECORDS_PER_BATCH)),
    )


if __name__ == "__main__":
    _older_models()
    from collector.cli import main

    sys.exit(main())
