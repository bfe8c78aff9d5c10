"""The torch-free `.pt` reader: real checkpoints load exactly, hostile ones never execute."""

from __future__ import annotations

import io
import os
import pickle
import re
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandseg.weights import CheckpointError, HostTensor, read_pt

from .ptwriter import STORAGE_TYPES, Pickle, write_archive, write_checkpoint

F32_4 = HostTensor("F32", (2, 2), np.arange(4, dtype="<f4").tobytes())


# Real checkpoint.


def test_conformance_checkpoint_matches_the_official_layout(
    mobile_sam_tensors: dict[str, HostTensor], official_layout: list
) -> None:
    got = [(name, t.shape, t.dtype) for name, t in mobile_sam_tensors.items()]
    assert len(got) == 439
    assert got == official_layout


def test_conformance_tensors_are_the_stored_bytes(
    mobile_sam_pt: Path, mobile_sam_tensors: dict[str, HostTensor]
) -> None:
    # torch.save numbers storages in pickling order, one per tensor in this file.
    with zipfile.ZipFile(mobile_sam_pt) as archive:
        prefix = next(n for n in archive.namelist() if n.endswith("/data.pkl"))[: -len("data.pkl")]
        for index, tensor in enumerate(mobile_sam_tensors.values()):
            assert tensor.data == archive.read(f"{prefix}data/{index}")
    tracked = mobile_sam_tensors["image_encoder.patch_embed.seq.0.bn.num_batches_tracked"]
    assert np.frombuffer(tracked.data, "<i8").shape == (1,)


def test_reads_from_a_file_object(mobile_sam_pt: Path) -> None:
    tensors = read_pt(io.BytesIO(mobile_sam_pt.read_bytes()))
    assert len(tensors) == 439


# Valid checkpoints written by our test writer.


def test_every_dtype_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    tensors = {
        dtype: HostTensor(dtype, (3, 2), rng.bytes(6 * size))
        for dtype, size in (("F32", 4), ("F64", 8), ("F16", 2), ("BF16", 2), ("I64", 8))
    }
    tensors |= {d: HostTensor(d, (5,), rng.bytes(5 * s)) for d, s in (("I32", 4), ("I16", 2))}
    tensors |= {d: HostTensor(d, (), bytes([1])) for d in ("I8", "U8", "BOOL")}
    tensors["empty"] = HostTensor("F32", (0, 3), b"")
    assert set(STORAGE_TYPES) <= set(tensors)
    assert read_pt(write_checkpoint(tmp_path / "c.pt", tensors)) == tensors


@pytest.mark.parametrize("wrap", ["model", "state_dict"])
def test_nested_state_dict_is_returned(tmp_path: Path, wrap: str) -> None:
    path = write_checkpoint(tmp_path / "c.pt", {"w": F32_4}, wrap=wrap)
    assert read_pt(path) == {"w": F32_4}


def test_missing_byteorder_record_means_little_endian(tmp_path: Path) -> None:
    pkl = Pickle().ordered_dict().str("w").tensor("FloatStorage", "0", 4, 0, (2, 2), (2, 1))
    path = write_archive(tmp_path / "c.pt", pkl.setitem().stop(), {"0": F32_4.data}, byteorder=None)
    assert read_pt(path) == {"w": F32_4}


def test_parameters_dtype_globals_and_shared_storages(tmp_path: Path) -> None:
    p = Pickle().ordered_dict()
    p.str("param").glob("torch._utils", "_rebuild_parameter")
    p.mark().tensor("FloatStorage", "0", 4, 0, (2, 2), (2, 1)).bool(True).ordered_dict()
    p.tuple().reduce().setitem()
    # A view into the same storage: the second row, transposed to a column.
    p.str("row").tensor("FloatStorage", "0", 4, 2, (2, 1), (1, 1)).setitem()
    p.str("by_dtype").glob("torch._utils", "_rebuild_tensor_v2").mark()
    p.storage("float32", "1", 2).int(0).ints((2,)).ints((1,)).bool(False).ordered_dict()
    p.tuple().reduce().setitem()
    p.str("untyped").glob("torch._utils", "_rebuild_tensor_v2").mark()
    p.storage("UntypedStorage", "2", 3, module="torch.storage").int(0).ints((3,)).ints((1,))
    p.bool(False).ordered_dict().tuple().reduce().setitem()
    storages = {"0": F32_4.data, "1": F32_4.data[:8], "2": b"abc"}
    tensors = read_pt(write_archive(tmp_path / "c.pt", p.stop(), storages))
    assert tensors["param"] == F32_4
    assert tensors["row"] == HostTensor("F32", (2, 1), F32_4.data[8:])
    assert tensors["by_dtype"] == HostTensor("F32", (2,), F32_4.data[:8])
    assert tensors["untyped"] == HostTensor("U8", (3,), b"abc")


@st.composite
def strided_views(draw: st.DrawFn) -> tuple[int, int, tuple[int, ...], tuple[int, ...]]:
    size = tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    stride = tuple(draw(st.lists(st.integers(0, 6), min_size=len(size), max_size=len(size))))
    offset = draw(st.integers(0, 5))
    reach = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True)) + 1
    numel = max(reach, int(np.prod(size)), offset) + draw(st.integers(0, 3))
    return numel, offset, size, stride


@settings(max_examples=200, deadline=None)
@given(view=strided_views())
def test_strided_views_match_numpy(view: tuple[int, int, tuple, tuple]) -> None:
    numel, offset, size, stride = view
    storage = np.arange(numel, dtype="<f4")
    expected = np.lib.stride_tricks.as_strided(
        storage[offset:], size, tuple(4 * s for s in stride)
    ).copy()
    pkl = Pickle().ordered_dict().str("v").tensor("FloatStorage", "0", numel, offset, size, stride)
    archive = io.BytesIO()
    write_archive(archive, pkl.setitem().stop(), {"0": storage.tobytes()})  # type: ignore[arg-type]
    assert read_pt(archive)["v"] == HostTensor("F32", size, expected.tobytes())


# Hostile and broken checkpoints (CV-2). Each builder gets the marker path that a payload
# would create and returns a checkpoint path.


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str]]:
        return os.system, (f"touch {self.marker}",)


class Plain:
    pass


def archive_with(pkl: bytes, storages: dict[str, bytes] | None = None, **kw: object) -> Callable:
    def build(tmp: Path, marker: Path) -> Path:
        return write_archive(tmp / "c.pt", pkl, storages or {}, **kw)  # type: ignore[arg-type]

    return build


def payload(p: Pickle, marker: Path, module: str = "os", name: str = "system") -> Pickle:
    return p.glob(module, name).mark().str(f"touch {marker}").tuple().reduce()


def valid_tensors(p: Pickle) -> Pickle:
    for index, name in enumerate(("a", "b")):
        p.str(name).tensor("FloatStorage", str(index), 4, 0, (2, 2), (2, 1)).setitem()
    return p


TWO = {"0": F32_4.data, "1": F32_4.data}


def os_system_reduce(tmp: Path, marker: Path) -> Path:
    return archive_with(payload(Pickle(), marker).stop())(tmp, marker)


def builtins_eval_global(tmp: Path, marker: Path) -> Path:
    code = f"open({str(marker)!r}, 'w').write('x')"
    pkl = Pickle().glob("builtins", "eval").mark().str(code).tuple().reduce().stop()
    return archive_with(pkl)(tmp, marker)


def payload_nested_in_state_dict(tmp: Path, marker: Path) -> Path:
    p = Pickle().ordered_dict().str("a").tensor("FloatStorage", "0", 4, 0, (2, 2), (2, 1))
    p.setitem().str("inner").ordered_dict().str("x")
    payload(p, marker, "posix", "system").setitem().setitem()
    return archive_with(p.stop(), {"0": F32_4.data})(tmp, marker)


def payload_after_valid_tensors(tmp: Path, marker: Path) -> Path:
    # check_call(("touch", marker)): given one string, check_call would look for a program
    # named "touch <marker>" and the payload could never create its marker.
    p = valid_tensors(Pickle().ordered_dict()).str("z")
    p.glob("subprocess", "check_call").mark().mark().str("touch").str(str(marker)).tuple()
    p.tuple().reduce().setitem()
    return archive_with(p.stop(), TWO)(tmp, marker)


def reduce_from_a_real_pickler(tmp: Path, marker: Path) -> Path:
    return archive_with(pickle.dumps({"w": Evil(marker)}, protocol=2))(tmp, marker)


def stack_global_protocol_4(tmp: Path, marker: Path) -> Path:
    return archive_with(pickle.dumps(Evil(marker), protocol=4))(tmp, marker)


def inst_opcode(tmp: Path, marker: Path) -> Path:
    return archive_with(f"(S'touch {marker}'\nios\nsystem\n.".encode())(tmp, marker)


def obj_opcode(tmp: Path, marker: Path) -> Path:
    pkl = b"\x80\x02(cbuiltins\nexec\n" + f"S'open({str(marker)!r}, \"w\")'\n".encode() + b"o."
    return archive_with(pkl)(tmp, marker)


def copyreg_reconstructor(tmp: Path, marker: Path) -> Path:
    return archive_with(pickle.dumps(Plain(), protocol=1))(tmp, marker)


def newobj_on_allowed_class(tmp: Path, marker: Path) -> Path:
    return archive_with(Pickle().glob("collections", "OrderedDict").raw(b")\x81").stop())(
        tmp, marker
    )


def extension_registry(tmp: Path, marker: Path) -> Path:
    return archive_with(b"\x80\x02\x82\x01.")(tmp, marker)


def build_on_allowed_function(tmp: Path, marker: Path) -> Path:
    p = Pickle().glob("torch._utils", "_rebuild_tensor_v2").empty_dict().str("__defaults__")
    return archive_with(p.raw(b"N").setitem().raw(b"b").stop())(tmp, marker)


def build_on_a_tensor(tmp: Path, marker: Path) -> Path:
    p = Pickle().ordered_dict().str("a").tensor("FloatStorage", "0", 4, 0, (2, 2), (2, 1))
    p.empty_dict().str("tensor").int(0).setitem().raw(b"b").setitem()
    return archive_with(p.stop(), {"0": F32_4.data})(tmp, marker)


def huge_memo_index(tmp: Path, marker: Path) -> Path:
    return archive_with(b"\x80\x02Nr\xf0\xff\xff\xff.")(tmp, marker)


def bytes_after_stop(tmp: Path, marker: Path) -> Path:
    return archive_with(Pickle().ordered_dict().stop() + b"junk")(tmp, marker)


def truncated_pickle(tmp: Path, marker: Path) -> Path:
    return archive_with(valid_tensors(Pickle().ordered_dict()).stop()[:-9], TWO)(tmp, marker)


def persistent_id_not_a_storage(tmp: Path, marker: Path) -> Path:
    return archive_with(Pickle().mark().str("evil").tuple().raw(b"Q").stop())(tmp, marker)


def storage_key_path_traversal(tmp: Path, marker: Path) -> Path:
    p = Pickle().ordered_dict().str("a").tensor("FloatStorage", "../x", 4, 0, (4,), (1,))
    return archive_with(p.setitem().stop())(tmp, marker)


def storage_larger_than_file(tmp: Path, marker: Path) -> Path:
    p = Pickle().ordered_dict().str("a").tensor("FloatStorage", "0", 1000, 0, (1000,), (1,))
    return archive_with(p.setitem().stop(), {"0": bytes(16)})(tmp, marker)


def storage_smaller_than_file(tmp: Path, marker: Path) -> Path:
    p = Pickle().ordered_dict().str("a").tensor("FloatStorage", "0", 2, 0, (2,), (1,))
    return archive_with(p.setitem().stop(), {"0": bytes(16)})(tmp, marker)


def storage_missing(tmp: Path, marker: Path) -> Path:
    p = Pickle().ordered_dict().str("a").tensor("FloatStorage", "7", 4, 0, (4,), (1,))
    return archive_with(p.setitem().stop())(tmp, marker)


def view(offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> Callable:
    p = Pickle().ordered_dict().str("a").tensor("FloatStorage", "0", 4, offset, size, stride)
    return archive_with(p.setitem().stop(), {"0": F32_4.data})


def backward_hooks(tmp: Path, marker: Path) -> Path:
    p = Pickle().ordered_dict().str("a").glob("torch._utils", "_rebuild_tensor_v2").mark()
    p.storage("FloatStorage", "0", 4).int(0).ints((4,)).ints((1,)).bool(False)
    p.ordered_dict().str("hook").int(1).setitem().tuple().reduce().setitem()
    return archive_with(p.stop(), {"0": F32_4.data})(tmp, marker)


def ordered_dict_with_arguments(tmp: Path, marker: Path) -> Path:
    p = Pickle().glob("collections", "OrderedDict").mark().raw(b"]").tuple().reduce()
    return archive_with(p.stop())(tmp, marker)


def corrupt_zip_crc(tmp: Path, marker: Path) -> Path:
    data = HostTensor("U8", (16,), b"UNIQUE-RECORD-01")
    path = write_checkpoint(tmp / "c.pt", {"a": data})
    raw = bytearray(path.read_bytes())
    raw[raw.index(b"UNIQUE-RECORD-01") + 3] ^= 0xFF
    path.write_bytes(raw)
    return path


def not_a_zip(tmp: Path, marker: Path) -> Path:
    path = tmp / "c.pt"
    path.write_bytes(pickle.dumps(Evil(marker), protocol=2))
    return path


def truncated_zip(tmp: Path, marker: Path) -> Path:
    path = write_checkpoint(tmp / "c.pt", {"a": F32_4})
    path.write_bytes(path.read_bytes()[:-40])
    return path


def no_data_pkl(tmp: Path, marker: Path) -> Path:
    path = tmp / "c.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/other.pkl", Pickle().ordered_dict().stop())
    return path


def two_data_pkl(tmp: Path, marker: Path) -> Path:
    path = tmp / "c.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("a/data.pkl", Pickle().ordered_dict().stop())
        archive.writestr("b/data.pkl", Pickle().ordered_dict().stop())
    return path


def duplicate_member_names(tmp: Path, marker: Path) -> Path:
    path = write_checkpoint(tmp / "c.pt", {"a": F32_4})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate we want
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("archive/data/0", bytes(16))
    return path


def top_level(pkl: bytes, storages: dict[str, bytes] | None = None) -> Callable:
    return archive_with(pkl, storages)


HOSTILE = {
    "os_system_reduce": (os_system_reduce, "references os.system"),
    "builtins_eval_global": (builtins_eval_global, "references builtins.eval"),
    "payload_nested_in_state_dict": (payload_nested_in_state_dict, "references posix.system"),
    "payload_after_valid_tensors": (payload_after_valid_tensors, "subprocess.check_call"),
    "reduce_from_a_real_pickler": (reduce_from_a_real_pickler, "references posix.system"),
    "stack_global_protocol_4": (stack_global_protocol_4, "references posix.system"),
    "inst_opcode": (inst_opcode, "references os.system"),
    "obj_opcode": (obj_opcode, "references builtins.exec"),
    "copyreg_reconstructor": (copyreg_reconstructor, "references copy_reg._reconstructor"),
    "newobj_on_allowed_class": (newobj_on_allowed_class, "opcode NEWOBJ"),
    "extension_registry": (extension_registry, "opcode EXT1"),
    "build_on_allowed_function": (build_on_allowed_function, "tries to modify torch._utils"),
    "build_on_a_tensor": (build_on_a_tensor, "tries to modify a tensor"),
    "huge_memo_index": (huge_memo_index, "out-of-order memo index"),
    "bytes_after_stop": (bytes_after_stop, "4 bytes after its STOP"),
    "truncated_pickle": (truncated_pickle, "not a valid checkpoint pickle"),
    "persistent_id_not_a_storage": (persistent_id_not_a_storage, "unsupported persistent id"),
    "storage_key_path_traversal": (storage_key_path_traversal, "not a plain record name"),
    "storage_larger_than_file": (storage_larger_than_file, "exceeds the 16 bytes stored"),
    "storage_smaller_than_file": (storage_smaller_than_file, "is smaller than the 16 bytes"),
    "storage_missing": (storage_missing, "storage '7' is missing"),
    "view_past_storage_end": (view(2, (3,), (1,)), "reaches element 4"),
    "view_expanded": (view(0, (8,), (0,)), "more elements than the storage"),
    "view_negative_stride": (view(3, (2,), (-1,)), "negative or non-integer"),
    "backward_hooks": (backward_hooks, "backward hooks"),
    "ordered_dict_with_arguments": (ordered_dict_with_arguments, "called with arguments"),
    "corrupt_zip_crc": (corrupt_zip_crc, "Bad CRC-32"),
    "not_a_zip": (not_a_zip, "not a readable zip archive"),
    "truncated_zip": (truncated_zip, "not a readable zip archive"),
    "no_data_pkl": (no_data_pkl, "has no <name>/data.pkl"),
    "two_data_pkl": (two_data_pkl, "has 2 <name>/data.pkl"),
    "duplicate_member_names": (duplicate_member_names, "duplicate member names"),
    "big_endian": (archive_with(Pickle().ordered_dict().stop(), byteorder=b"big"), "big-endian"),
    "bad_byteorder": (archive_with(b".", byteorder=b"middle"), "unknown byteorder"),
    "top_level_list": (top_level(Pickle().raw(b"]").stop()), "holds list, not a dict"),
    "empty_state_dict": (top_level(Pickle().ordered_dict().stop()), "contains no tensors"),
    "non_tensor_value": (
        top_level(Pickle().ordered_dict().str("n").int(3).setitem().stop()),
        "entry 'n' is not a tensor but int",
    ),
    "non_string_key": (
        top_level(valid_tensors(Pickle().ordered_dict()).int(1).int(2).setitem().stop(), TWO),
        "non-string key of type int",
    ),
    "model_and_state_dict": (
        top_level(
            Pickle().empty_dict().str("model").empty_dict().setitem()
            .str("state_dict").empty_dict().setitem().stop()
        ),
        "both 'model' and 'state_dict'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(HOSTILE))
@pytest.mark.requirement("CV-2")
def test_hostile_or_broken_checkpoint_is_rejected(tmp_path: Path, case: str) -> None:
    build, fragment = HOSTILE[case]
    marker = tmp_path / "marker"
    path = build(tmp_path, marker)
    with pytest.raises(CheckpointError) as info:
        read_pt(path)
    assert fragment in str(info.value)
    assert not marker.exists()


# The payloads that would run code: each creates its marker when the real `pickle` runs it
# (in a child process, with torch's globals and storages stubbed: torch is not installed).
ARMED = [
    "os_system_reduce",
    "builtins_eval_global",
    "payload_nested_in_state_dict",
    "payload_after_valid_tensors",
    "reduce_from_a_real_pickler",
    "stack_global_protocol_4",
    "inst_opcode",
    "obj_opcode",
    "not_a_zip",
]
REAL_PICKLE = """
import io, pickle, sys, zipfile

class Unguarded(pickle.Unpickler):
    def find_class(self, module, name):
        if module.split(".")[0] == "torch":
            return lambda *args: None
        return super().find_class(module, name)

    def persistent_load(self, pid):
        return None

path = sys.argv[1]
if zipfile.is_zipfile(path):
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
else:
    data = open(path, "rb").read()
try:
    Unguarded(io.BytesIO(data)).load()
except Exception as exc:  # after the payload ran, what it left may not unpickle further
    print(type(exc).__name__, exc)
"""


@pytest.mark.parametrize("case", ARMED)
@pytest.mark.requirement("CV-2")
def test_an_armed_payload_runs_under_pickle_and_not_under_our_reader(
    tmp_path: Path, case: str
) -> None:
    build, fragment = HOSTILE[case]
    armed = tmp_path / "armed"
    armed.mkdir()
    marker = armed / "marker"
    child = subprocess.run(
        [sys.executable, "-c", REAL_PICKLE, str(build(armed, marker))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert marker.exists(), f"{case} does not run under pickle: {child.stdout}{child.stderr}"
    marker = tmp_path / "marker"
    with pytest.raises(CheckpointError, match=re.escape(fragment)):
        read_pt(build(tmp_path, marker))
    assert not marker.exists()


@pytest.mark.requirement("CV-2")
def test_rejection_leaves_no_state_behind(tmp_path: Path) -> None:
    # A BUILD attempt on a stand-in is refused, so the next load behaves normally.
    build_on_allowed_function(tmp_path, tmp_path / "marker")
    with pytest.raises(CheckpointError):
        read_pt(tmp_path / "c.pt")
    assert read_pt(write_checkpoint(tmp_path / "ok.pt", {"w": F32_4})) == {"w": F32_4}


def test_total_bytes_budget(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "c.pt", {"w": F32_4})
    with pytest.raises(CheckpointError, match="max_total_bytes"):
        read_pt(path, max_total_bytes=8)
    assert read_pt(path, max_total_bytes=16) == {"w": F32_4}


def test_copied_views_count_against_the_budget(tmp_path: Path) -> None:
    p = Pickle().ordered_dict().str("v").tensor("FloatStorage", "0", 4, 1, (3,), (1,))
    path = write_archive(tmp_path / "c.pt", p.setitem().stop(), {"0": F32_4.data})
    with pytest.raises(CheckpointError, match="max_total_bytes"):
        read_pt(path, max_total_bytes=16 + 11)
    assert read_pt(path, max_total_bytes=16 + 12)["v"].data == F32_4.data[4:]


def test_overlapping_views_cannot_copy_more_than_the_storages_hold(tmp_path: Path) -> None:
    # Found while fuzzing (CV-2): views rebuilt again and again from a few bytes of pickle copied or
    # gathered far more than the file held, for seconds and hundreds of MiB.
    p = Pickle().ordered_dict()
    for index in range(10):
        p.str(f"v{index}").tensor("FloatStorage", "0", 4, 1, (3,), (1,)).setitem()
    path = write_archive(tmp_path / "c.pt", p.stop(), {"0": F32_4.data})
    with pytest.raises(CheckpointError, match="copy 24 bytes out of storages holding 16"):
        read_pt(path)


def test_deeply_nested_tuple_key_is_refused_before_it_is_hashed(tmp_path: Path) -> None:
    # Found while fuzzing (CV-2): hashing a dict key of 200,000 nested tuples overflowed the C stack
    # (a segfault); the opcode pre-scan now refuses nesting beyond MAX_TUPLE_DEPTH.
    pkl = Pickle().empty_dict().raw(b"N" + b"\x85" * 200_000).str("x").setitem().stop()
    with pytest.raises(CheckpointError, match="nests tuples more than 100 deep"):
        read_pt(write_archive(tmp_path / "c.pt", pkl, {}))


def test_pickle_size_cap(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "c.pt", {"w": F32_4})
    with pytest.raises(CheckpointError, match=r"data\.pkl' is \d+ bytes, over 10"):
        read_pt(path, max_pickle_bytes=10)
