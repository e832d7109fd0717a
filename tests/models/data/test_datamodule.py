"""The training data module on tiny real stamp stores: splits by object, chunked batches, seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from models.data import BlockBatchSampler, StampDataModule, assign_splits, load_splits
from pipeline.store import StampStoreWriter, open_store

RB_CHANNELS = ["template", "science", "difference", "snr"]


def _write_realbogus(path, n_objects: int, epochs: int, seed: int, prefix: str = "obj", chunk_rows: int = 8):
    """A store of ``n_objects * epochs`` 4x21x21 stamps, objects repeated across epochs, half real."""
    rng = np.random.default_rng(seed)
    n = n_objects * epochs
    stamps = rng.normal(size=(n, 4, 21, 21)).astype(np.float32)
    stamps[:, :, 8:13, 8:13] += np.arange(n, dtype=np.float32)[:, None, None, None]  # tells rows apart
    mask = np.zeros(stamps.shape, np.uint8)
    mask[::5, :, 0, :3] = 1
    stamps[mask.astype(bool)] = 0.0
    obj = np.tile(np.arange(n_objects), epochs)
    catalog = {"object_id": [f"{prefix}{i}" for i in obj], "source": [f"f{i}.fits" for i in range(n)]}
    labels = {"real": (obj % 2).astype(np.int8)}
    with StampStoreWriter(path, RB_CHANNELS, (21, 21), chunk_rows=chunk_rows) as writer:
        writer.append(stamps, mask, catalog, labels)
    return path


@pytest.fixture
def rb_store(tmp_path):
    return _write_realbogus(tmp_path / "rb.h5", n_objects=20, epochs=3, seed=0)


@pytest.fixture
def gz_store(tmp_path):
    rng = np.random.default_rng(1)
    n = 24
    stamps = rng.random((n, 3, 48, 48), dtype=np.float32)
    answers = rng.random((n, 37), dtype=np.float32)
    catalog = {"object_id": [str(100 + i) for i in range(n)], "source": [f"{100 + i}.jpg" for i in range(n)]}
    with StampStoreWriter(tmp_path / "gz.h5", ["r", "g", "b"], (48, 48), chunk_rows=6) as writer:
        writer.append(stamps, None, catalog, {"gz_answers": answers})
    return tmp_path / "gz.h5"


def _batches(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def test_no_object_is_in_two_splits_and_the_split_is_stratified(tmp_path, rb_store):
    other = _write_realbogus(tmp_path / "rb2.h5", n_objects=10, epochs=2, seed=5)  # obj0..obj9 again
    dm = StampDataModule([rb_store, other], target="real", fractions=(0.6, 0.2, 0.2), seed=3)
    dm.setup("fit")
    assert len(dm.split) == 60 + 20
    per_object = {}
    for obj, split in zip(dm.object_ids, dm.split, strict=True):
        per_object.setdefault(obj, set()).add(split)
    assert len(per_object) == 20 and all(len(s) == 1 for s in per_object.values())
    for name in ("train", "val", "test"):
        classes = dm.targets[dm.indices(name)]
        assert set(classes.tolist()) == {0, 1}  # stratified: both classes in every split
    counts = dm.split_counts
    assert counts["train"] > counts["val"] > 0 and counts["test"] > 0 and sum(counts.values()) == 80


def test_group_shuffle_split_for_regression_targets_keeps_objects_together():
    ids = np.repeat(np.arange(50).astype(str), 3)
    split = assign_splits(ids, (0.7, 0.15, 0.15), seed=0)
    table = {}
    for obj, s in zip(ids, split, strict=True):
        table.setdefault(obj, set()).add(s)
    assert all(len(s) == 1 for s in table.values())
    assert set(split) == {"train", "val", "test"}
    assert np.array_equal(split, assign_splits(ids, (0.7, 0.15, 0.15), seed=0))
    assert not np.array_equal(split, assign_splits(ids, (0.7, 0.15, 0.15), seed=1))


def test_objects_with_stamps_of_both_classes_still_stay_in_one_split():
    rng = np.random.default_rng(7)
    ids = np.repeat([f"o{i}" for i in range(40)], 4)
    labels = rng.integers(0, 2, size=len(ids))  # classes vary within an object: StratifiedGroupKFold
    split = assign_splits(ids, (0.8, 0.1, 0.1), seed=0, stratify=labels)
    for obj in np.unique(ids):
        assert len(set(split[ids == obj])) == 1
    assert {"train", "val", "test"} == set(split)
    assert 0.6 < np.mean(split == "train") < 0.95


def test_same_seed_gives_the_same_batches_and_epochs_differ(rb_store):
    def make(seed):
        dm = StampDataModule(
            rb_store, "real", batch_size=8, seed=seed, augment="realbogus", shuffle_window=16
        )
        dm.setup("fit")
        return dm

    a, b = make(11), make(11)
    loader_a, loader_b = a.train_dataloader(), b.train_dataloader()
    epoch0_a, epoch0_b = _batches(loader_a), _batches(loader_b)
    epoch1_a = _batches(loader_a)
    assert len(epoch0_a) == len(loader_a) == -(-a.split_counts["train"] // 8)
    for (xa, ya), (xb, yb) in zip(epoch0_a, epoch0_b, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(epoch0_a, epoch1_a, strict=True))
    # set_epoch (called by Lightning) replays an epoch exactly.
    sampler = loader_b.sampler
    sampler.set_epoch(0)
    replay = _batches(loader_b)
    assert all(torch.equal(p[0], q[0]) for p, q in zip(epoch0_a, replay, strict=True))
    other = _batches(make(12).train_dataloader())
    assert not all(torch.equal(p[0], q[0]) for p, q in zip(epoch0_a, other, strict=True))


def test_an_epoch_covers_the_training_split_once_in_sorted_batches(rb_store):
    dm = StampDataModule(rb_store, "real", batch_size=5, seed=0, shuffle_window=8)
    dm.setup("fit")
    batches = [idx for _, _, idx in dm.sampler("train", shuffle=True)]
    seen = np.concatenate(batches)
    assert np.array_equal(np.sort(seen), dm.indices("train"))  # each training stamp exactly once
    assert all(np.array_equal(b, np.sort(b)) for b in batches)  # sorted for one h5py read


def test_block_sampler_draws_each_batch_from_one_window_of_whole_chunks():
    idx = np.arange(64)
    sampler = BlockBatchSampler(idx, idx // 8, batch_size=4, shuffle=True, window=8, seed=0)
    batches = [b for _, _, b in sampler]
    assert all(len(np.unique(b // 8)) == 1 for b in batches)  # a window = one chunk of 8 rows
    assert np.array_equal(np.sort(np.concatenate(batches)), idx)
    chunk_order = [int(b[0] // 8) for b in batches[::2]]
    assert sorted(chunk_order) == list(range(8)) and chunk_order != list(range(8))  # chunks shuffled
    wide = [b for _, _, b in BlockBatchSampler(idx, idx // 8, batch_size=4, shuffle=True, window=32, seed=0)]
    assert max(len(np.unique(b // 8)) for b in wide) > 1  # a wider window mixes chunks


def test_block_sampler_without_shuffle_is_consecutive_and_drops_last_on_request():
    idx = np.arange(23)
    plain = [b for _, _, b in BlockBatchSampler(idx, idx // 4, 5, shuffle=False)]
    assert [len(b) for b in plain] == [5, 5, 5, 5, 3] and np.array_equal(np.concatenate(plain), idx)
    dropped = BlockBatchSampler(idx, idx // 4, 5, shuffle=True, drop_last=True)
    assert len(dropped) == 4 and [len(b) for _, _, b in dropped] == [5, 5, 5, 5]


def test_targets_shapes_and_augmentation_on_training_batches_only(rb_store):
    dm = StampDataModule(rb_store, "real", batch_size=64, seed=0, augment="realbogus", keep_mask="any")
    dm.setup("fit")
    (x_val, y_val) = next(iter(dm.val_dataloader()))
    val_idx = dm.indices("val")
    with open_store(rb_store) as store:
        raw = store.stamps(val_idx)
        mask = store.mask(val_idx)
        real = store.labels("real", val_idx)
    assert x_val.dtype == torch.float32 and x_val.shape == (len(val_idx), 5, 21, 21)
    assert torch.equal(x_val[:, :4], torch.from_numpy(raw))  # no augmentation outside training
    assert torch.equal(x_val[:, 4], torch.from_numpy(mask.any(axis=1).astype(np.float32)))
    assert y_val.dtype == torch.int64 and torch.equal(y_val, torch.from_numpy(real.astype(np.int64)))
    x_train, y_train = next(iter(dm.train_dataloader()))
    assert x_train.shape[1] == 5 and y_train.dtype == torch.int64
    train_idx = np.sort(dm.indices("train"))
    with open_store(rb_store) as store:
        raw_train = torch.from_numpy(store.stamps(train_idx))
    assert not any(torch.equal(x_train[0, :4], r) for r in raw_train)  # augmented


def test_morphology_targets_preprocessing_and_fitted_colour_pca(gz_store):
    dm = StampDataModule(
        gz_store,
        "gz_answers",
        batch_size=4,
        fractions=(0.5, 0.25, 0.25),
        preprocess="dieleman",
        preprocess_kwargs={"crop": 42, "out": 14},
        augment="morphology",
    )
    dm.setup("fit")
    assert dm.augment_config.color_pca_eigvals is not None and len(dm.augment_config.color_pca_eigvecs) == 3
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 3, 14, 14) and y.shape == (4, 37) and y.dtype == torch.float32
    with open_store(gz_store) as store:
        expected = store.labels("gz_answers", np.sort(dm.indices("test"))[:4])
    _, y_test = next(iter(dm.test_dataloader()))
    assert torch.equal(y_test, torch.from_numpy(expected))
    assert dm.state_dict()["augment"]["color_pca_eigvals"] == list(dm.augment_config.color_pca_eigvals)


def test_split_csv_is_saved_and_reloaded_for_reproducibility(tmp_path, rb_store):
    csv = tmp_path / "splits.csv"
    first = StampDataModule(rb_store, "real", seed=0, splits_csv=csv)
    first.setup()
    assert csv.exists()
    lines = csv.read_text().splitlines()
    assert lines[0] == "object_id,split" and len(lines) == 1 + 20  # one row per object
    second = StampDataModule(rb_store, "real", seed=99, splits_csv=csv)  # another seed, same split
    second.setup()
    assert np.array_equal(first.split, second.split)
    with pytest.raises(ValueError, match="not in"):
        load_splits(csv, ["obj0", "unknown_object"])


def test_stores_with_different_channels_are_refused(tmp_path, rb_store, gz_store):
    dm = StampDataModule([rb_store, gz_store], "real")
    with pytest.raises(ValueError, match="channels"):
        dm.setup()


@pytest.mark.parametrize("keep_mask", ["none", "any"])
def test_batches_from_memory_equal_batches_read_from_the_store(rb_store, keep_mask):
    """Prepared rows in memory give the same training and test batches, bit for bit, as per-batch reads."""

    def make(memory_bytes):
        dm = StampDataModule(
            rb_store,
            "real",
            batch_size=8,
            seed=3,
            preprocess="deep_hits",
            preprocess_kwargs={"add_snr": False},
            augment="realbogus",
            keep_mask=keep_mask,
            shuffle_window=16,
            memory_bytes=memory_bytes,
        )
        dm.setup("fit")
        return dm

    in_memory, from_store = make(2**30), make(0)
    assert in_memory._dataset(augment=True).memory_rows is not None
    assert from_store._dataset(augment=True).memory_rows is None
    for name in ("train_dataloader", "test_dataloader"):
        a, b = _batches(getattr(in_memory, name)()), _batches(getattr(from_store, name)())
        assert len(a) == len(b) > 0
        for (xa, ya), (xb, yb) in zip(a, b, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # too small a budget: read from the store
    assert make(1000)._dataset(augment=True).memory_rows is None
