"""Rebuild the shipped ZTF triplet samples from real alert packets (provenance script, run by hand).

For each ZTF alert packet (Avro) in the given folders, write ``<candid>.fits.gz``: a multi-extension FITS
file with an empty primary HDU carrying the alert's ids and scores (OBJECTID, CANDID, RA, DEC, ISDIFPOS,
RB, DRB, FID, MAGPSF) and three image extensions SCIENCE, TEMPLATE, DIFFERENCE holding the packet's cutouts
with their pixel values and headers unchanged (big-endian float32, NaN and blank sentinels kept), plus
``alerts.csv`` listing the same fields.

Usage: python extract.py ../../../../shared/ztf_alerts/A_ztf-avro-alert ... --out .
"""

import argparse
import gzip
import io
from pathlib import Path

import fastavro
from astropy.io import fits

CUTOUTS = (("SCIENCE", "cutoutScience"), ("TEMPLATE", "cutoutTemplate"), ("DIFFERENCE", "cutoutDifference"))


def convert(packet: Path, out: Path) -> dict:
    with open(packet, "rb") as fh:
        alert = next(fastavro.reader(fh))
    cand = alert["candidate"]
    primary = fits.PrimaryHDU()
    row = {
        "OBJECTID": alert["objectId"],
        "CANDID": str(alert["candid"]),
        "RA": cand["ra"],
        "DEC": cand["dec"],
        "ISDIFPOS": cand["isdiffpos"],
        "RB": cand.get("rb"),
        "DRB": cand.get("drb"),
        "FID": cand["fid"],
        "MAGPSF": cand["magpsf"],
    }
    for key, value in row.items():
        if value is not None:
            primary.header[key] = value
    primary.header["ORIGIN"] = f"ZTF alert packet {packet.name}"
    hdus = [primary]
    for extname, field in CUTOUTS:
        raw = alert[field]["stampData"]
        with fits.open(io.BytesIO(gzip.decompress(raw))) as cut:
            hdus.append(fits.ImageHDU(cut[0].data, cut[0].header, name=extname))
    target = out / f"{alert['candid']}.fits.gz"
    fits.HDUList(hdus).writeto(target, overwrite=True)
    return {"file": target.name, "packet": packet.name, **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("."))
    args = parser.parse_args()
    rows = [convert(p, args.out) for folder in args.folders for p in sorted(folder.glob("*.avro"))]
    import pandas as pd

    pd.DataFrame(rows).to_csv(args.out / "alerts.csv", index=False)
    print(f"wrote {len(rows)} triplets to {args.out}")


if __name__ == "__main__":
    main()
