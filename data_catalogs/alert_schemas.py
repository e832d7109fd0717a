"""ZTF and Rubin alert packets: how to recognise them, which fields we read, and what they mean.

Two families of Avro alert schemas are known (:func:`alert_family`), recognised by their fields, never by
the record name (Fink's tools and Spark write the same packets under other names, e.g. ``topLevelRecord``):

- **ztf** (every schema version: pre-2.0 packets without ``schemavsn``, 2.0, 3.x ... 4.x): a ``candidate``
  record and ``cutoutScience``/``cutoutTemplate``/``cutoutDifference`` records ``{fileName, stampData}``
  where ``stampData`` is a gzipped FITS file (primary HDU, big-endian float32, normally 63x63 pixels of
  1.01", smaller where the stamp reaches the edge of the CCD readout quadrant).
- **rubin** (``lsst.v*`` schemas: ``lsst.v9_0`` and ``lsst.v10_0`` read alike): a ``diaSource`` record and
  the three cutouts as plain (not gzipped) FITS bytes with HDUs PRIMARY (the image, float32), UNCERT
  (variance) and PSFIMAGE (float64); square stamps of 30x30 to 71x71 pixels of 0.2"; the survey's own
  score is ``diaSource.reliability``.

The sign of the difference stamp (``isdiffpos``, ZTF's Avro schema doc and SOURCE.md of the samples):

- ``'t'`` (or ``'1'`` in early packets): the candidate comes from the positive subtraction, and the
  difference cutout is science minus reference (``*_scimref.fits.gz``);
- ``'f'`` (or ``'0'``): the candidate comes from the negative subtraction and the difference cutout is
  reference minus science (``*_refmsci.fits.gz``), so the candidate is positive in the stamp either way.

We keep ``isdiffpos`` verbatim and add ``diff_sign`` (+1: difference = science - template; -1: template -
science; 0: unknown). Rubin difference images are always science - template: ``diff_sign`` is +1 and
``isdiffpos`` is derived from ``diaSource.isNegative`` (``'f'`` for negative sources).

:data:`ALERT_COLUMNS` is the row every packet becomes (the stamp-store catalog and the scored catalog),
filled by :func:`alert_row`; :func:`reader_schema` projects a writer schema onto the fields used, so that
decoding skips the large parts of a packet (previous candidates, object summaries).
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FAMILIES = ("ztf", "rubin")
#: Cutout fields of a packet, in the order of the stamp channels.
CUTOUT_FIELDS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")
#: Stamp channel names (the EXTNAMEs of the shipped triplets and of ``stampflow simulate transients``).
CHANNELS = ("SCIENCE", "TEMPLATE", "DIFFERENCE")
#: Pixel scale of each survey's cutouts in arcsec/pixel.
PIXEL_SCALE_ARCSEC = {"ztf": 1.01, "rubin": 0.2}
#: Full size of a ZTF cutout (smaller only where it is cut by the edge of the readout quadrant).
ZTF_CUTOUT_SIZE = 63
#: ZTF filter id -> band.
ZTF_BANDS = {1: "g", 2: "r", 3: "i"}
#: ``isdiffpos`` value -> sign of the difference stamp (+1: science - template, -1: template - science).
DIFF_SIGN = {"t": 1, "1": 1, "f": -1, "0": -1}
#: AB zero point of fluxes in nJy: m = 31.4 - 2.5 log10(f / nJy).
NJY_AB_ZEROPOINT = 31.4

#: Fields of ``candidate`` (ZTF) read from a packet; others are skipped while decoding.
ZTF_CANDIDATE_FIELDS = (
    "candid",
    "ra",
    "dec",
    "jd",
    "fid",
    "magpsf",
    "sigmapsf",
    "isdiffpos",
    "nbad",
    "rb",
    "rbversion",
    "drb",
    "drbversion",
    "ssdistnr",
    "xpos",
    "ypos",
)
ZTF_TOP_FIELDS = ("schemavsn", "objectId", "candid", "candidate", *CUTOUT_FIELDS)
#: Fields of ``diaSource`` (Rubin) read from a packet.
RUBIN_SOURCE_FIELDS = (
    "diaSourceId",
    "diaObjectId",
    "ssObjectId",
    "midpointMjdTai",
    "ra",
    "dec",
    "x",
    "y",
    "band",
    "psfFlux",
    "psfFluxErr",
    "reliability",
    "isNegative",
    "pixelFlags_bad",
    "pixelFlags_saturatedCenter",
)
RUBIN_TOP_FIELDS = ("diaSourceId", "diaSource", "lsst_schema_version", *CUTOUT_FIELDS)

#: The catalog row of one alert: name -> (kind, unit, description). Kinds: ``str``, ``int`` (int64; -1
#: where the packet has no value), ``float`` (float64; NaN where the packet has no value).
ALERT_COLUMNS: dict[str, tuple[str, str, str]] = {
    "survey": ("str", "", "Alert stream: ztf or rubin"),
    "schemavsn": (
        "str",
        "",
        "Packet schema version (ZTF schemavsn, '' before 2.0; Rubin lsst_schema_version)",
    ),
    "objectId": ("str", "", "Survey object id (ZTF objectId; Rubin diaObjectId, else ssObjectId)"),
    "candid": ("int", "", "Candidate id (ZTF candid; Rubin diaSourceId)"),
    "ra": ("float", "deg", "Right ascension of the candidate (ICRS)"),
    "dec": ("float", "deg", "Declination of the candidate (ICRS)"),
    "jd": ("float", "d", "Julian date of the observation (Rubin: midpointMjdTai + 2400000.5, TAI)"),
    "fid": ("int", "", "ZTF filter id (1 g, 2 r, 3 i); -1 for Rubin"),
    "band": ("str", "", "Filter band (g, r, i, ...)"),
    "magpsf": ("float", "mag", "PSF magnitude of the difference detection (Rubin: AB from |psfFlux|)"),
    "sigmapsf": ("float", "mag", "1-sigma uncertainty of magpsf"),
    "isdiffpos": ("str", "", "ZTF isdiffpos verbatim: t/1 positive subtraction, f/0 negative"),
    "diff_sign": ("int", "", "+1: difference stamp = science - template; -1: template - science; 0 unknown"),
    "nbad": ("int", "", "ZTF: bad pixels within 5x5 px of the candidate; -1 when absent"),
    "rb": ("float", "", "ZTF random-forest real-bogus score from the packet"),
    "rbversion": ("str", "", "Version of the packet's rb model"),
    "drb": ("float", "", "ZTF deep real-bogus score (braai) from the packet (schema >= 3.3)"),
    "drbversion": ("str", "", "Version of the packet's drb model"),
    "reliability": ("float", "", "Rubin diaSource.reliability score from the packet"),
    "ssdistnr": ("float", "arcsec", "ZTF: distance to the nearest known solar system object (-999 none)"),
    "xpos": ("float", "pix", "x of the candidate in the readout image (ZTF 1-based; Rubin diaSource.x)"),
    "ypos": ("float", "pix", "y of the candidate in the readout image (ZTF 1-based; Rubin diaSource.y)"),
    "saturated_center": (
        "int",
        "",
        "Rubin diaSource.pixelFlags_saturatedCenter: 1 saturated pixels at the source's centre, 0 none; "
        "-1 when the packet does not say (ZTF)",
    ),
    "cutout_height": ("int", "pix", "Rows of the cutouts as received (before any padding)"),
    "cutout_width": ("int", "pix", "Columns of the cutouts as received (before any padding)"),
}
_MISSING = {"str": "", "int": -1, "float": math.nan}


class AlertSchemaError(ValueError):
    """A packet lacks a field its family needs (the message names it)."""


def _field_names(schema: Mapping[str, Any]) -> set[str]:
    return {f["name"] for f in schema.get("fields", []) if isinstance(f, Mapping)}


def _record_of(field_type: Any) -> Mapping[str, Any] | None:
    """The record schema of a field type (a record, or a union holding one), else None."""
    types = field_type if isinstance(field_type, list) else [field_type]
    for t in types:
        if isinstance(t, Mapping) and t.get("type") == "record":
            return t
    return None


def alert_family(schema: Mapping[str, Any]) -> str | None:
    """``"ztf"``, ``"rubin"`` or None for an Avro writer schema (a parsed JSON dict), by its fields."""
    if not isinstance(schema, Mapping) or schema.get("type") != "record":
        return None
    names = _field_names(schema)
    if not set(CUTOUT_FIELDS) <= names:
        return None
    if "candidate" in names:
        candidate = _record_of(next(f["type"] for f in schema["fields"] if f["name"] == "candidate"))
        if candidate is not None and {"candid", "ra", "dec", "isdiffpos"} <= _field_names(candidate):
            return "ztf"
    if "diaSource" in names:
        source = _record_of(next(f["type"] for f in schema["fields"] if f["name"] == "diaSource"))
        if source is not None and {"diaSourceId", "ra", "dec"} <= _field_names(source):
            return "rubin"
    return None


def fields_schema(tree: Mapping[str, Any], name: str = "record") -> dict[str, Any]:
    """An Avro-like record schema of field names, for :func:`alert_family`: ``tree`` maps each top-level
    field to a mapping of its own fields (a record or struct) or to anything else (a plain value).

    How alerts in other formats are recognised by the same rule as Avro packets: a JSON alert or a Parquet
    row (its dict), or the columns of a Parquet file (struct columns as mappings).
    """
    fields = []
    for key, value in tree.items():
        kind: Any = "null"
        if isinstance(value, Mapping):
            kind = {"type": "record", "name": str(key), "fields": [{"name": str(k)} for k in value]}
        fields.append({"name": str(key), "type": kind})
    return {"type": "record", "name": name, "fields": fields}


def record_family(record: Mapping[str, Any]) -> str | None:
    """``"ztf"``, ``"rubin"`` or None for a decoded alert record (a JSON alert, a Parquet row), by its
    fields, as :func:`alert_family` tells it for a writer schema."""
    return alert_family(fields_schema(record)) if isinstance(record, Mapping) else None


def _project_record(record: Mapping[str, Any], keep: Sequence[str]) -> dict[str, Any]:
    out = dict(record)
    out["fields"] = [f for f in record["fields"] if f["name"] in keep]
    return out


def _project_field(field: dict[str, Any], keep: Sequence[str]) -> dict[str, Any]:
    """A field whose record type (possibly inside a union) keeps only ``keep``."""
    field = dict(field)
    if isinstance(field["type"], list):
        field["type"] = [
            _project_record(t, keep) if isinstance(t, Mapping) and t.get("type") == "record" else t
            for t in field["type"]
        ]
    elif isinstance(field["type"], Mapping) and field["type"].get("type") == "record":
        field["type"] = _project_record(field["type"], keep)
    return field


def reader_schema(schema: Mapping[str, Any], family: str) -> dict[str, Any]:
    """A reader schema for a writer schema of ``family``: the same records with only the fields used.

    Avro schema resolution then skips every other field while decoding (previous candidates, object
    summaries, ...). The result keeps the writer's record names, so it always resolves against it.
    """
    top, nested_name, nested_keep = (
        (ZTF_TOP_FIELDS, "candidate", ZTF_CANDIDATE_FIELDS)
        if family == "ztf"
        else (RUBIN_TOP_FIELDS, "diaSource", RUBIN_SOURCE_FIELDS)
    )
    out = copy.deepcopy(dict(schema))
    out["fields"] = [
        _project_field(f, nested_keep) if f["name"] == nested_name else f
        for f in out["fields"]
        if f["name"] in top
    ]
    return out


def cutout_bytes(record: Mapping[str, Any], family: str, field: str) -> bytes | None:
    """The FITS bytes of one cutout (gzipped for ZTF), or None when the packet has none."""
    value = record.get(field)
    if family == "ztf" and isinstance(value, Mapping):
        value = value.get("stampData")
    return value if isinstance(value, (bytes, bytearray, memoryview)) and len(value) else None


def cutout_file_name(record: Mapping[str, Any], field: str) -> str:
    """ZTF's ``fileName`` of a cutout (``..._scimref.fits.gz`` / ``..._refmsci.fits.gz``), else ''."""
    value = record.get(field)
    return str(value.get("fileName") or "") if isinstance(value, Mapping) else ""


def _value(kind: str, value: Any) -> Any:
    if value is None:
        return _MISSING[kind]
    if kind == "str":
        return str(value)
    if kind == "int":
        return int(value)
    return float(value)


def _njy_mag(flux: Any, flux_err: Any) -> tuple[float, float]:
    """AB magnitude of |flux| in nJy and its 1-sigma error (NaN where the flux is 0 or missing)."""
    if flux is None or not math.isfinite(flux) or flux == 0:
        return math.nan, math.nan
    mag = NJY_AB_ZEROPOINT - 2.5 * math.log10(abs(flux))
    err = 2.5 / math.log(10) * abs(flux_err / flux) if flux_err is not None else math.nan
    return mag, err


def _ztf_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    cand = record.get("candidate")
    if not isinstance(cand, Mapping):
        raise AlertSchemaError("the packet has no candidate record")
    missing = [k for k in ("candid", "ra", "dec", "jd", "fid") if cand.get(k) is None]
    if missing or not record.get("objectId"):
        raise AlertSchemaError(f"the packet lacks {missing or ['objectId']}")
    isdiffpos = str(cand.get("isdiffpos") or "")
    fid = cand.get("fid")
    return {
        "survey": "ztf",
        "schemavsn": record.get("schemavsn"),
        "objectId": record.get("objectId"),
        "candid": record.get("candid", cand.get("candid")),
        **{k: cand.get(k) for k in ("ra", "dec", "jd", "fid", "magpsf", "sigmapsf", "nbad", "ssdistnr")},
        **{k: cand.get(k) for k in ("rb", "rbversion", "drb", "drbversion", "xpos", "ypos")},
        "band": ZTF_BANDS.get(fid, ""),
        "isdiffpos": isdiffpos,
        "diff_sign": DIFF_SIGN.get(isdiffpos.lower(), 0),
    }


def _rubin_fields(record: Mapping[str, Any]) -> dict[str, Any]:
    src = record.get("diaSource")
    if not isinstance(src, Mapping):
        raise AlertSchemaError("the packet has no diaSource record")
    source_id = src.get("diaSourceId", record.get("diaSourceId"))
    missing = [
        k
        for k, v in (("diaSourceId", source_id), ("ra", src.get("ra")), ("dec", src.get("dec")))
        if v is None
    ]
    if missing:
        raise AlertSchemaError(f"the packet's diaSource lacks {missing}")
    object_id = next((src.get(k) for k in ("diaObjectId", "ssObjectId") if src.get(k)), source_id)
    mag, mag_err = _njy_mag(src.get("psfFlux"), src.get("psfFluxErr"))
    mjd = src.get("midpointMjdTai")
    negative = src.get("isNegative")
    return {
        "survey": "rubin",
        "schemavsn": record.get("lsst_schema_version"),
        "objectId": object_id,
        "candid": source_id,
        "ra": src.get("ra"),
        "dec": src.get("dec"),
        "jd": None if mjd is None else mjd + 2400000.5,
        "fid": None,
        "band": src.get("band"),
        "magpsf": mag,
        "sigmapsf": mag_err,
        "isdiffpos": "" if negative is None else ("f" if negative else "t"),
        "diff_sign": 1,
        "reliability": src.get("reliability"),
        "saturated_center": src.get("pixelFlags_saturatedCenter"),
        "xpos": src.get("x"),
        "ypos": src.get("y"),
    }


def alert_row(record: Mapping[str, Any], family: str) -> dict[str, Any]:
    """The :data:`ALERT_COLUMNS` of a decoded packet (``cutout_height``/``cutout_width`` left -1).

    Raises:
        AlertSchemaError: the packet lacks the ids, position or time its family needs.
    """
    fields = _ztf_fields(record) if family == "ztf" else _rubin_fields(record)
    return {name: _value(kind, fields.get(name)) for name, (kind, _, _) in ALERT_COLUMNS.items()}


#: Bit of each quality flag in a scored alert's ``quality_flags`` (an int: the sum of the set flags' bits).
QUALITY_BITS = {"flag_masked": 1, "flag_edge": 2, "flag_nan": 4, "flag_saturated_core": 8, "flag_nbad": 16}

#: Quality columns of a scored alert (:mod:`pipeline.alerts.quality`; thresholds from its config): name ->
#: (kind, unit, description). Flagged alerts are scored like the others; a flag never drops an alert.
QUALITY_COLUMNS: dict[str, tuple[str, str, str]] = {
    "flag_edge": (
        "bool",
        "",
        "True when the stamp was cut by the CCD edge (ZTF cutout under 63x63) and padded",
    ),
    "nan_fraction": (
        "float",
        "",
        "Fraction of the pixels the packet sent (all channels, padding not counted) that are NaN or blank",
    ),
    "flag_nan": ("bool", "", "True when nan_fraction is above the configured nan.max_fraction"),
    "core_peak": (
        "float",
        "DN (ZTF) or nJy (Rubin)",
        "Peak of the science stamp in the central box of saturation.core_half_width px around the candidate",
    ),
    "flag_saturated_core": (
        "bool",
        "",
        "True when core_peak is at or above the survey's configured saturation level, or the packet says "
        "the centre is saturated (saturated_center = 1)",
    ),
    "flag_nbad": ("bool", "", "True when the packet's nbad is above the configured nbad.max"),
    "quality_flags": (
        "int",
        "",
        "Quality flags as bits (0: none): 1 flag_masked, 2 flag_edge, 4 flag_nan, 8 flag_saturated_core, "
        "16 flag_nbad",
    ),
}


def column_units() -> dict[str, str]:
    """Column -> unit of :data:`ALERT_COLUMNS` and :data:`QUALITY_COLUMNS` (only those that have one)."""
    columns = {**ALERT_COLUMNS, **QUALITY_COLUMNS}
    return {name: unit for name, (_, unit, _) in columns.items() if unit}


def column_descriptions() -> dict[str, str]:
    """Column -> description of :data:`ALERT_COLUMNS` and :data:`QUALITY_COLUMNS`."""
    return {name: desc for name, (_, _, desc) in {**ALERT_COLUMNS, **QUALITY_COLUMNS}.items()}


#: The published Avro schema of stampflow's per-alert classification records (broker output).
CLASSIFICATION_SCHEMA_PATH = Path(__file__).resolve().parent / "schemas" / "stampflow.classification.avsc"


def classification_schema() -> dict[str, Any]:
    """The broker output schema (:data:`CLASSIFICATION_SCHEMA_PATH`) as a JSON dict."""
    return json.loads(CLASSIFICATION_SCHEMA_PATH.read_text())
