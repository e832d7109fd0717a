"""The two kinds of background source of :func:`pipeline.simulate.transients.backgrounds.load_backgrounds`:
alert packets (:func:`read_alert_backgrounds`) and stamp stores (:func:`read_store_backgrounds`).

Both fill the caller's :class:`~pipeline.simulate.transients.backgrounds.BackgroundSet` with the sha256 of
each file, the number of inputs and the rejects (``(source, reason, message)``), and return the usable
backgrounds in source order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from pipeline.io import StampRejected
from pipeline.simulate.transients.backgrounds import (
    CHANNELS,
    Background,
    BackgroundSet,
    make_background,
)
from pipeline.simulate.transients.surveys import SURVEYS

#: Stamp side of a ZTF background, px.
SIZE = SURVEYS["ztf"].size


def read_alert_backgrounds(
    paths: Sequence[str | os.PathLike], labels: Mapping[int, int], out: BackgroundSet, *, workers: int = 1
) -> list[Background]:
    """Backgrounds of alert files and folders (ZTF packets; others are ``wrong_survey`` rejects)."""
    from pipeline.alerts import AlertDecoder, conform, expand_alert_inputs

    found = []
    with AlertDecoder(workers, digest=True) as decoder:
        for decoded in decoder.decode(expand_alert_inputs(paths)):
            if decoded.sha256:
                out.files[decoded.path] = decoded.sha256
            out.inputs += decoded.n_packets
            out.rejects += [(r.source, r.reason, r.error) for r in decoded.rejects]
            for alert in decoded.alerts:
                row = alert.row
                if row["survey"] != "ztf":
                    message = f"{alert.source}: a {row['survey']} packet; backgrounds are ZTF triplets"
                    out.rejects.append((alert.source, "wrong_survey", message))
                    continue
                try:
                    pixels, mask = conform(alert.pixels, alert.mask, (SIZE, SIZE), row, alert.source)
                except StampRejected as err:
                    out.rejects.append((alert.source, err.reason, str(err)))
                    continue
                found.append(make_background(int(row["candid"]), alert.source, pixels, mask, row, labels))
    return found


def _store_candid(catalog: Mapping[str, np.ndarray], row: int) -> int | None:
    """The candid of store row ``row``: ``candid``, else an integer ``object_id``; None if neither."""
    for column in ("candid", "object_id"):
        if column in catalog:
            try:
                value = int(str(catalog[column][row]))
            except ValueError:
                continue
            if value >= 0:
                return value
    return None


def read_store_backgrounds(
    path: str | os.PathLike, labels: Mapping[int, int], out: BackgroundSet
) -> list[Background]:
    """Backgrounds of a stamp store of ZTF triplets (``SCIENCE``/``TEMPLATE``/``DIFFERENCE`` 63x63).

    A store with other channels or another stamp size is one ``wrong_channels`` / ``wrong_shape`` reject
    for all its rows; a row without a candid is a ``no_candid`` reject."""
    from pipeline.store import open_store, sha256_file

    name = str(path)
    try:
        store = open_store(path)
    except (OSError, ValueError) as err:
        out.inputs += 1
        out.rejects.append((name, "unreadable", f"{name}: {err}"))
        return []
    found = []
    with store:
        out.files[name] = sha256_file(path)
        out.inputs += store.n
        channels = [c.upper() for c in store.channels]
        problem = None
        if not set(CHANNELS) <= set(channels):
            problem = (
                "wrong_channels",
                f"{name}: channels {store.channels}, backgrounds need {list(CHANNELS)}",
            )
        elif store.stamp_shape != (SIZE, SIZE):
            problem = (
                "wrong_shape",
                f"{name}: stamps are {store.stamp_shape}, backgrounds need {SIZE}x{SIZE}",
            )
        if problem:
            out.rejects += [(f"{name}#{row}", *problem) for row in range(store.n)]
            return []
        order = [channels.index(c) for c in CHANNELS]
        columns = [c for c in ("candid", "object_id", "drb", "rb", "diff_sign") if c in store.catalog_columns]
        catalog = {c: store.catalog(columns=[c])[c].to_numpy() for c in columns}
        real = store.labels("real") if "real" in store.label_names else None
        for sel, stamps, masks in store.iter_chunks(256):
            for k, row in enumerate(range(sel.start, sel.stop)):
                source = f"{name}#{row}"
                candid = _store_candid(catalog, row)
                if candid is None:
                    out.rejects.append((source, "no_candid", f"{source}: no integer candid or object_id"))
                    continue
                pixels = stamps[k][order]
                mask = masks[k][order]
                fields = {c: catalog[c][row] for c in ("drb", "rb", "diff_sign") if c in catalog}
                if real is not None:
                    fields["real"] = int(real[row])
                found.append(make_background(candid, source, pixels, mask, fields, labels))
    return found
