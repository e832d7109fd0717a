"""Alert packets from JSON, as brokers and their notebooks publish them (braai's examples, Kowalski's API).

A JSON alert is the packet's record as a JSON object: ``objectId``, ``candid``, ``candidate`` (ZTF) or
``diaSourceId``, ``diaSource`` (Rubin), and the three cutouts, whose bytes JSON cannot hold directly. They
come as MongoDB extended JSON (``{"$binary": "<base64>", "$type": "00"}``, or ``{"$binary": {"base64":
..., "subType": ...}}``) or as plain base64 strings; a ZTF cutout is ``{fileName, stampData}`` around them.
Extended-JSON numbers (``{"$numberLong": "..."}``, ``$numberInt``, ``$numberDouble``) are read as numbers.

A file holds one alert (an object), several (an array of objects), or one per line (JSON Lines).
:func:`iter_json_packets` yields the same :class:`pipeline.alerts.avro.Packet` records an Avro packet of the
alert gives, each alert one input named ``path#index`` (0-based):

- ``not_json``: the file is not JSON (nor JSON Lines) text (the file), or one line of a JSON Lines file, or
  an alert whose cutout is not base64 (that alert);
- ``unknown_schema``: an item that is not an object, or whose fields are neither a ZTF nor a Rubin alert
  (decided per alert by :func:`data_catalogs.alert_schemas.record_family`).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator, Mapping
from typing import Any

from data_catalogs.alert_schemas import CUTOUT_FIELDS, record_family
from pipeline.alerts.avro import AlertFileError, Packet, PacketError

#: Reject reasons of JSON alert files (besides ``unknown_schema``).
JSON_REASONS = {
    "not_json": "the file (or a line, or an alert's cutout) is not JSON alert text: not JSON, not base64",
}
_NUMBERS = {"$numberLong": int, "$numberInt": int, "$numberDouble": float}


class CutoutEncodingError(ValueError):
    """A cutout value is neither bytes as extended JSON nor a base64 string."""


def _plain(value: Any) -> Any:
    """A JSON value with extended-JSON numbers (``{"$numberLong": "1"}``) made plain numbers."""
    if isinstance(value, dict):
        if len(value) == 1:
            key, text = next(iter(value.items()))
            if key in _NUMBERS:
                return _NUMBERS[key](text)
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def json_bytes(value: Any) -> bytes | None:
    """The bytes of a JSON cutout value: ``{"$binary": b64}``, ``{"$binary": {"base64": b64}}``, a base64
    string, or None (JSON null, or nothing).

    Raises:
        CutoutEncodingError: the value is not one of those, or not valid base64.
    """
    if value is None:
        return None
    if isinstance(value, Mapping) and "$binary" in value:
        value = value["$binary"]
        if isinstance(value, Mapping):
            value = value.get("base64")
    if not isinstance(value, str):
        raise CutoutEncodingError(f"a {type(value).__name__}, not base64 text")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as err:
        raise CutoutEncodingError(f"not valid base64 ({err})") from err


def alert_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON alert as the record an Avro packet decodes to: numbers plain, cutouts as bytes.

    Raises:
        CutoutEncodingError: a cutout's value cannot be turned into bytes (the message names it).
    """
    record = {k: (v if k in CUTOUT_FIELDS else _plain(v)) for k, v in item.items()}
    for field in CUTOUT_FIELDS:
        value = record.get(field)
        try:
            if isinstance(value, Mapping) and "stampData" in value:  # ZTF: {fileName, stampData}
                record[field] = {**value, "stampData": json_bytes(value["stampData"])}
            elif value is not None:
                record[field] = json_bytes(value)
        except CutoutEncodingError as err:
            raise CutoutEncodingError(f"its {field} is {err}") from err
    return record


def _items(data: bytes, name: str) -> Iterator[Any | PacketError]:
    """The JSON items of a file: the object, the array's elements, or each JSON Lines line; a line that
    does not parse is a :class:`PacketError`."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise AlertFileError("not_json", f"{name}: not JSON text (not UTF-8: {err})") from err
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as err:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2 or err.msg != "Extra data":
            raise AlertFileError("not_json", f"{name}: not JSON ({err})") from err
        for i, line in enumerate(lines):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as line_err:
                yield PacketError(i, "not_json", f"{name}#{i}: the line is not JSON ({line_err})")
        return
    yield from parsed if isinstance(parsed, list) else [parsed]


def iter_json_packets(data: bytes, name: str) -> Iterator[Packet | PacketError]:
    """Every alert of a JSON (or JSON Lines) file held in ``data`` as a packet, in file order.

    Raises:
        AlertFileError: ``not_json``: the file is not UTF-8 JSON or JSON Lines text.
    """
    for index, item in enumerate(_items(data, name)):
        if isinstance(item, PacketError):
            yield item
            continue
        if not isinstance(item, Mapping):
            message = f"{name}#{index}: a JSON {type(item).__name__}, not an alert object"
            yield PacketError(index, "unknown_schema", message)
            continue
        try:
            record = alert_record(item)
        except CutoutEncodingError as err:
            yield PacketError(index, "not_json", f"{name}#{index}: {err}")
            continue
        label = str(record.get("_id") or record.get("objectId") or "JSON alert")
        yield Packet(index, record_family(record), record, label)
