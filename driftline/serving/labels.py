"""`/feedback`: true labels for rows the server answered.

Body: one object or a list of them, `{"request_id": <id from the /predict answer>, "index": <the
record's position in that request, 0-based; may be left out when it held one record>, "label":
<value>}`. A label names a row this server issued recently (else 404) and is one of the served
model's classes, or a finite number for a regression model (else 422). A body is taken whole or
not at all. Labels for one row collapse to the last: within a body here, within a flush in the
feedback log (PartitionedLog's `unique`), and across flushes in its readers, which take the newest
by the server's clock; so a corrected label replaces a wrong one, and ten thousand labels for one
row are one row, not ten thousand for the monitor to load."""

from __future__ import annotations

import json
import math

from driftline.adapters.predlog import now
from driftline.serving.ids import RequestIds
from driftline.serving.intake import FLOAT_MAX, BadInput, TooMany, _show
from driftline.serving.loader import Loaded


class NotIssued(LookupError):
    """Answered 404: the row a label names was not answered by this server (recently)."""


def feedback_rows(parsed: object, ids: RequestIds, models: list[Loaded], max_items: int) -> list[dict]:
    """Log rows for the labels in `parsed`. Raises BadInput (422), TooMany (413) or NotIssued (404)."""
    items = parsed if isinstance(parsed, list) else [parsed]
    if not items:
        raise BadInput("no labels: send an object or a non-empty list of them")
    if len(items) > max_items:
        raise TooMany(f"{len(items)} labels in one request; at most {max_items}")
    rows: dict[tuple[str, int], dict] = {}
    stamp = now()
    for i, item in enumerate(items):
        if not isinstance(item, dict) or type(item.get("request_id")) is not str or "label" not in item:
            raise BadInput(f"feedback[{i}] needs 'request_id' (the string /predict answered with) and 'label'")
        issued = ids.verify(item["request_id"])
        if issued is None:
            raise NotIssued(f"feedback[{i}]: request id {_show(item['request_id'])} was not issued by this server "
                            f"in the last {ids.max_age / 3600:g} h")
        index = item.get("index")
        if index is None:
            if issued.records != 1:
                raise BadInput(f"feedback[{i}]: that request held {issued.records} records; say which with 'index'")
            index = 0
        if type(index) is not int:
            raise BadInput(f"feedback[{i}]: 'index' must be an integer, got {_show(index)}")
        if not 0 <= index < issued.records:
            raise NotIssued(f"feedback[{i}]: that request held {issued.records} record(s); there is no index {index}")
        try:
            label = check_label(item["label"], models)
        except BadInput as err:
            raise BadInput(f"feedback[{i}]: {err}") from None
        rows.pop((item["request_id"], index), None)  # the last label for a row is its place, too
        rows[(item["request_id"], index)] = {"request_id": item["request_id"], "record_index": index,
                                             "label": json.dumps(label), "timestamp": stamp}
    return list(rows.values())


def check_label(value: object, models: list[Loaded]) -> object:
    """The label as the model's own class value (so readers compare like with like), or a float."""
    if not models[0].classification:
        if (type(value) is not int and type(value) is not float) or not -FLOAT_MAX <= value <= FLOAT_MAX \
                or not math.isfinite(value):
            raise BadInput(f"label must be a finite number, got {_show(value)}")
        return float(value)
    if type(value) is float and value.is_integer():
        value = int(value)
    if type(value) not in (int, str, bool):
        raise BadInput(f"label must be one of the model's classes, got {_show(value)}")
    classes: dict[str, object] = {}
    for loaded in models:
        for name, cls in zip(loaded.class_names, loaded.model.classes_, strict=True):
            classes.setdefault(name, cls.item() if hasattr(cls, "item") else cls)
    key = str(value)
    if key not in classes:
        raise BadInput(f"label {_show(value)} is not one of the model's classes ({', '.join(map(repr, classes))})")
    return classes[key]
