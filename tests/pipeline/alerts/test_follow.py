"""Follow mode: files dropped into a folder while it runs (atomically renamed, and one written in two
halves), stopped and restarted, killed before a batch is published and after: every alert scored exactly
once, with the real ``ztf`` checkpoint and real packets."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time

import pandas as pd
import pytest

from models.checkpoints import load_checkpoint
from pipeline.alerts import (
    STATE_NAME,
    AlertScorer,
    FollowSettings,
    FollowState,
    StabilityWatcher,
    alert_batch_writer,
    follow_alerts,
    read_classifications,
)
from pipeline.scoring import Scorer
from tests.pipeline.alerts.alert_helpers import manifest, write_ztf_checkpoint, ztf_sample_files

pytestmark = pytest.mark.slow

FAST = FollowSettings(poll_s=0.05, settle_s=0.2, max_batch_files=6, truncated_grace_s=30.0)


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    module, card = load_checkpoint(write_ztf_checkpoint(tmp_path_factory.mktemp("model") / "model.ckpt"))
    return Scorer(module, card)


def _drop(src, folder):
    """Write elsewhere-named then rename into place, as a well-behaved writer does."""
    tmp = folder / f".{src.name}.partial"
    shutil.copyfile(src, tmp)
    tmp.rename(folder / src.name)


class Runner:
    """follow_alerts in a thread, stopped with an Event (what SIGTERM does in the CLI)."""

    def __init__(self, scorer, folder, out, **kwargs):
        self.stop = threading.Event()
        self.result = None
        self.error = None

        def run():
            try:
                self.result = follow_alerts([folder], scorer, out, settings=FAST, stop=self.stop, **kwargs)
            except BaseException as err:  # surfaced by the test
                self.error = err

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def finish(self, timeout=120):
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive()
        return self.result


def _scored(out):
    """candid -> times scored, over every published batch (Parquet and Avro must agree)."""
    batches = sorted(out.glob("batches/*"))  # published atomically: each one complete
    frames = [pd.read_parquet(b / "scored.parquet") for b in batches]
    parquet = pd.concat(frames)["candid"].tolist() if frames else []
    avro = [r["candid"] for b in batches for r in read_classifications(b / "classifications.avro")]
    assert sorted(parquet) == sorted(avro)
    return pd.Series(parquet).value_counts().to_dict()


def _wait_for(predicate, timeout=90.0):
    t0 = time.monotonic()
    while not predicate():
        assert time.monotonic() - t0 < timeout, "timed out"
        time.sleep(0.05)


def test_every_alert_scored_exactly_once_across_restarts(scorer, tmp_path):
    files = ztf_sample_files()[:21]
    candids = {int(r["candid"]) for r in manifest()[:21]}
    assert len(candids) == 21
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()

    run = Runner(scorer, inbox, out)
    for src in files[:8]:
        _drop(src, inbox)
    # a file written in place in two halves, seen (and found truncated) in between
    half = files[8]
    data = half.read_bytes()
    (inbox / half.name).write_bytes(data[: len(data) // 2])
    time.sleep(4 * FAST.settle_s)
    with open(inbox / half.name, "ab") as fh:
        fh.write(data[len(data) // 2 :])
    _wait_for(lambda: len(_scored(out)) == 9)
    first = run.finish()
    assert first.batches >= 2 and first.files == 9  # bounded batches: at most 6 files each
    assert first.deferred >= 1  # the half file was read while half written, and left for later

    for src in files[9:15]:  # dropped while stopped
        _drop(src, inbox)
    run = Runner(scorer, inbox, out)
    for src in files[15:]:  # dropped while running again
        _drop(src, inbox)
    _wait_for(lambda: len(_scored(out)) == 21)
    time.sleep(4 * FAST.settle_s)  # give it the chance to score something twice
    second = run.finish()
    assert second.files == 12 and second.recovered_batches == 0

    counts = _scored(out)
    assert set(counts) == candids and set(counts.values()) == {1}
    rejects = pd.concat(pd.read_csv(p) for p in out.glob("batches/*/rejects.csv"))
    assert rejects.empty  # the half-written file was waited for, not rejected as truncated
    state = FollowState(out / STATE_NAME)
    assert len(state.claimed_paths()) == 21 and {s for _, s, _ in state.batches()} == {"done"}
    state.close()


def test_a_kill_before_or_after_publishing_a_batch_loses_nothing_and_repeats_nothing(scorer, tmp_path):
    files = ztf_sample_files()[30:40]
    inbox, out = tmp_path / "inbox", tmp_path / "out"
    inbox.mkdir()
    for src in files[:5]:
        _drop(src, inbox)
    real_writer = alert_batch_writer(AlertScorer(scorer))

    def killed_while_writing(decoded, folder):
        real_writer(decoded, folder)  # outputs written into the partial folder, then the process dies
        raise KeyboardInterrupt("killed")

    run = Runner(scorer, inbox, out, write_batch=killed_while_writing)
    run.thread.join(60)
    assert isinstance(run.error, KeyboardInterrupt)
    assert list(out.glob("batches/*")) == [] and list(out.glob(".batch-*.partial"))  # nothing published

    run = Runner(scorer, inbox, out)  # restart: the pending batch is scored again under its number
    _wait_for(lambda: len(_scored(out)) == 5)
    assert run.finish().recovered_batches == 1

    # killed after publishing, before marking the batch done: the restart must not score it again
    with sqlite3.connect(out / STATE_NAME) as db:
        db.execute("UPDATE batches SET status = 'pending'")
    for src in files[5:]:
        _drop(src, inbox)
    run = Runner(scorer, inbox, out)
    _wait_for(lambda: len(_scored(out)) == 10)
    time.sleep(4 * FAST.settle_s)
    assert run.finish().recovered_batches == 1
    counts = _scored(out)
    assert len(counts) == 10 and set(counts.values()) == {1}
    assert [p.name for p in sorted(out.glob("batches/*"))] == ["000001", "000002"]


def test_stability_watcher_waits_for_unchanged_files():
    watcher = StabilityWatcher(settle_s=1.0)
    assert watcher.ready({"a": (10, 1)}, now=0.0, truncated_grace_s=0) == []
    assert watcher.ready({"a": (10, 1)}, now=0.5, truncated_grace_s=0) == []
    assert watcher.ready({"a": (20, 2)}, now=1.2, truncated_grace_s=0) == []  # grew: the clock restarts
    assert watcher.ready({"a": (20, 2)}, now=2.0, truncated_grace_s=0) == []
    assert watcher.ready({"a": (20, 2), "b": (5, 1)}, now=2.3, truncated_grace_s=0) == ["a"]
