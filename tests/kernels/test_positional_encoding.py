"""positional_encoding (shaders/positional_encoding.wgsl) against reference.positional_encoding
and the official prompt encoder's outputs in the conformance vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sandseg.ops import OpError
from sandseg.ops.encoding import positional_encoding
from tests.gpu_helpers import assert_close, from_gpu, to_gpu
from tests.reference import encoding as ref

CONFORMANCE = Path(__file__).resolve().parents[2].parent / "shared" / "conformance"
# The argument 2 pi t reaches ~40 for a std-1 gaussian and is rounded to f32 (~2e-6 absolute;
# measured max error 2.5e-6 on lavapipe). 3e-5 leaves room for other sin/cos implementations
# while still catching a wrong offset, scale or layout, which cost 1e-2 and more.
ATOL = 3e-5


def _gaussian(rng, feats=128, scale=1.0):
    return (scale * rng.standard_normal((2, feats))).astype(np.float32)


def _recover_gaussian(dense_pe: np.ndarray) -> np.ndarray:
    """The (2, 128) gaussian behind SAM's dense PE (256, 64, 64), from the slopes of its
    unwrapped phases along x and y (the checkpoint reader is another module's job)."""
    angle = np.arctan2(dense_pe[:128], dense_pe[128:])  # (128, 64, 64): 2 pi t mod 2 pi
    c = 2 * (np.arange(64) + 0.5) / 64 - 1
    along_x = np.unwrap(angle, axis=2).reshape(-1, 64).T  # (x, feature * y)
    along_y = np.unwrap(angle, axis=1).transpose(1, 0, 2).reshape(64, -1)  # (y, feature * x)
    g0 = np.polyfit(c, along_x, 1)[0].reshape(128, 64).mean(axis=1)
    g1 = np.polyfit(c, along_y, 1)[0].reshape(128, 64).mean(axis=1)
    return (np.stack([g0, g1]) / (2 * np.pi)).astype(np.float32)


def test_positional_encoding_reproduces_sam_dense_pe(device):
    dense_pe = np.load(CONFORMANCE / "common_seed1234.npz")["dense_pe"][0]  # (256, 64, 64)
    gaussian = _recover_gaussian(dense_pe)
    got = from_gpu(positional_encoding(None, to_gpu(device, gaussian), grid=(64, 64)))
    assert_close(got.reshape(64, 64, 256), dense_pe.transpose(1, 2, 0), atol=ATOL)


def test_positional_encoding_reproduces_sam_sparse_prompts(device):
    # The label embeddings are not in the vectors: take them from the centre-point prompt
    # (sparse = pe + point_embeddings[1]; the padding point is not_a_point_embed) and check
    # the two-point prompt's positive point and padding, at other coordinates.
    gaussian = _recover_gaussian(np.load(CONFORMANCE / "common_seed1234.npz")["dense_pe"][0])
    data = np.load(CONFORMANCE / "picture1_seed1234.npz")
    centre = data["center_point__point_coords_1024"]  # (1, 2)
    centre_sparse = data["center_point__sparse_embeddings"][0]  # (2, 256)
    table = np.zeros((3, 256), dtype=np.float32)
    table[0] = centre_sparse[1]
    table[2] = centre_sparse[0] - ref.positional_encoding(centre, gaussian)[0]
    coords = np.concatenate([data["two_points__point_coords_1024"][:1], [[0.0, 0.0]]])
    labels = np.array([1, -1], dtype=np.int32)
    got = positional_encoding(
        to_gpu(device, coords),
        to_gpu(device, gaussian),
        labels=to_gpu(device, labels, "i32"),
        label_table=to_gpu(device, table),
    )
    expected = data["two_points__sparse_embeddings"][0][[0, 2]]
    assert_close(from_gpu(got), expected, atol=ATOL)


@pytest.mark.parametrize("scale", [1.0, 3.0])
def test_positional_encoding_dense_grid(device, rng, scale):
    gaussian = _gaussian(rng, scale=scale)
    got = positional_encoding(None, to_gpu(device, gaussian), grid=(64, 64))
    assert got.shape == (4096, 256)
    expected = ref.positional_encoding(ref.grid_coords(64, 64), gaussian, image_size=(64, 64))
    assert_close(from_gpu(got), expected, atol=ATOL * scale)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_positional_encoding_points_with_labels(device, rng, n):
    # Points in 1024-space with SAM's labels: padding (-1), negative, positive, box corners.
    coords = rng.uniform(0, 1024, (n, 2)).astype(np.float32)
    labels = rng.integers(-1, 4, n).astype(np.int32)
    table = rng.standard_normal((5, 256)).astype(np.float32)
    gaussian = _gaussian(rng)
    got = positional_encoding(
        to_gpu(device, coords),
        to_gpu(device, gaussian),
        labels=to_gpu(device, labels, "i32"),
        label_table=to_gpu(device, table),
    )
    expected = ref.positional_encoding(coords, gaussian, labels=labels, label_table=table)
    assert_close(from_gpu(got), expected, atol=ATOL)


@pytest.mark.parametrize(
    ("coords_shape", "feats", "kw"),
    [
        ((7, 2), 128, {"image_size": (770, 769), "offset": 0.0}),  # other normalisation
        ((1, 2), 1, {}),
        ((100, 2), 3, {}),  # columns not a multiple of anything
    ],
)
def test_positional_encoding_awkward_shapes(device, rng, coords_shape, feats, kw):
    coords = rng.uniform(0, 1024, coords_shape).astype(np.float32)
    gaussian = _gaussian(rng, feats)
    got = positional_encoding(to_gpu(device, coords), to_gpu(device, gaussian), **kw)
    assert_close(from_gpu(got), ref.positional_encoding(coords, gaussian, **kw), atol=ATOL)


def test_positional_encoding_odd_grid(device, rng):
    gaussian = _gaussian(rng, 5)
    got = positional_encoding(None, to_gpu(device, gaussian), grid=(3, 7))
    expected = ref.positional_encoding(ref.grid_coords(3, 7), gaussian, image_size=(3, 7))
    assert_close(from_gpu(got), expected, atol=ATOL)


def test_positional_encoding_clamps_out_of_range_labels(device, rng):
    # Labels live on the GPU, so the op cannot check them; the kernel must not read past
    # the table. 7 -> the last row, -5 -> row 0 (added, not a padding point).
    coords = rng.uniform(0, 1024, (2, 2)).astype(np.float32)
    gaussian, table = _gaussian(rng), rng.standard_normal((5, 256)).astype(np.float32)
    got = positional_encoding(
        to_gpu(device, coords),
        to_gpu(device, gaussian),
        labels=to_gpu(device, np.array([7, -5], dtype=np.int32), "i32"),
        label_table=to_gpu(device, table),
    )
    expected = ref.positional_encoding(coords, gaussian) + table[[4, 0]]
    assert_close(from_gpu(got), expected, atol=ATOL)


@pytest.mark.parametrize(
    ("kw", "fragment"),
    [
        ({"gaussian_shape": (3, 128)}, r"gaussian must be \(2, F\), got \(3, 128\)"),
        ({"coords_shape": (5, 3)}, r"coords must be \(N, 2\), got \(5, 3\)"),
        ({"coords_shape": None}, "without coords give a grid"),
        ({"grid": (64, 64)}, "not both"),
        ({"labels": (5,)}, "labels and label_table go together"),
        ({"labels": (4,), "table": (5, 256)}, r"labels must be \(5,\), got \(4,\)"),
        ({"labels": (5,), "table": (5, 128)}, r"label_table must be \(L, 256\)"),
        ({"image_size": (0, 1024)}, "image_size must be positive"),
    ],
)
def test_positional_encoding_rejects_bad_inputs(device, kw, fragment):
    coords_shape = kw.get("coords_shape", (5, 2))
    coords = device.empty(coords_shape) if coords_shape else None
    gaussian = device.empty(kw.get("gaussian_shape", (2, 128)))
    labels = device.empty(kw["labels"], "i32") if "labels" in kw else None
    table = device.empty(kw["table"]) if "table" in kw else None
    extra = {k: kw[k] for k in ("grid", "image_size") if k in kw}
    with pytest.raises(OpError, match=fragment) as info:
        positional_encoding(coords, gaussian, labels=labels, label_table=table, **extra)
    assert str(info.value).startswith("positional_encoding:")


def test_positional_encoding_rejects_f32_labels(device):
    with pytest.raises(OpError, match="labels must be i32"):
        positional_encoding(
            device.empty((2, 2)),
            device.empty((2, 128)),
            labels=device.empty((2,)),
            label_table=device.empty((5, 256)),
        )
