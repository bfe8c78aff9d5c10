"""Regenerate the fuzz seed corpus in tests/fuzz/corpus/: small valid files of both formats.

Run from the repository root: `.venv/bin/python -m tests.fuzz.make_corpus`. The output is
deterministic; a test checks that the committed files match it. The golden bad safetensors
files (tests/data/safetensors_bad) are seeds too, read from where they are.
"""

from __future__ import annotations

import io
import math
import zipfile

from sandseg.weights import HostTensor, dump_safetensors
from sandseg.weights.tensor import DTYPE_SIZES

from ..weights.ptwriter import Pickle, state_dict_pickle, write_archive
from .mutate_pt import read_members, write_members
from .targets import CORPUS_DIR


def _tensor(dtype: str, shape: tuple[int, ...]) -> HostTensor:
    nbytes = math.prod(shape) * DTYPE_SIZES[dtype]
    return HostTensor(dtype, shape, bytes(i % 251 for i in range(nbytes)))


def safetensors_corpus() -> dict[str, bytes]:
    every_dtype = {d.lower(): _tensor(d, (2,)) for d in DTYPE_SIZES}
    empty = {"a": _tensor("F32", (0,)), "b": _tensor("I64", (2, 0)), "c": _tensor("U8", (3,))}
    return {
        "f32_with_metadata": dump_safetensors(
            {"w": _tensor("F32", (2, 3))}, {"format": "pt", "note": "seed"}
        ),
        "every_dtype": dump_safetensors(every_dtype),
        "scalar_and_matrix": dump_safetensors(
            {"s": _tensor("F64", ()), "m": _tensor("F16", (3, 2)), "v": _tensor("BF16", (4,))}
        ),
        "empty_tensors": dump_safetensors(empty),
        "metadata_only": dump_safetensors({}, {"k": "v", "empty": ""}),
        "nothing": dump_safetensors({}),
        "unicode_names": dump_safetensors({"pöids.é": _tensor("I8", (2, 2))}, {"ключ": "значение"}),
    }


def _zip(pkl: bytes, storages: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    write_archive(buffer, pkl, storages)  # type: ignore[arg-type]
    # Re-written with fixed timestamps so that the corpus is reproducible.
    members = read_members(buffer.getvalue())
    assert members is not None
    return write_members(members)


def _views() -> tuple[bytes, dict[str, bytes]]:
    # A parameter, a transposed view, an offset view sharing its storage, dtype and untyped
    # storages: the rebuild paths torch.save uses.
    p = Pickle().ordered_dict()
    p.str("param").glob("torch._utils", "_rebuild_parameter")
    p.mark().tensor("FloatStorage", "0", 6, 0, (2, 3), (3, 1)).bool(True).ordered_dict()
    p.tuple().reduce().setitem()
    p.str("transposed").tensor("FloatStorage", "0", 6, 0, (3, 2), (1, 3)).setitem()
    p.str("row").tensor("FloatStorage", "0", 6, 3, (3,), (1,)).setitem()
    p.str("by_dtype").glob("torch._utils", "_rebuild_tensor_v2").mark()
    p.storage("float16", "1", 2).int(0).ints((2,)).ints((1,)).bool(False).ordered_dict()
    p.tuple().reduce().setitem()
    p.str("untyped").glob("torch._utils", "_rebuild_tensor_v2").mark()
    p.storage("UntypedStorage", "2", 3, module="torch.storage").int(0).ints((3,)).ints((1,))
    p.bool(False).ordered_dict().tuple().reduce().setitem()
    return p.stop(), {"0": bytes(range(24)), "1": b"abcd", "2": b"xyz"}


def _hostile() -> bytes:
    # CV-2's first case; the command does nothing if it ever ran.
    return Pickle().glob("os", "system").mark().str("true").tuple().reduce().stop()


def pt_corpus() -> dict[str, bytes]:
    small = {"a": _tensor("F32", (2, 2)), "b": _tensor("I64", ())}
    every_dtype = {d.lower(): _tensor(d, (2,)) for d in ("F32", "F64", "F16", "BF16", "I64")}
    every_dtype |= {d.lower(): _tensor(d, (3,)) for d in ("I32", "I16", "I8", "U8", "BOOL")}
    empty = {"e": _tensor("F32", (0,)), "f": _tensor("I32", (2, 0, 3))}
    state_dict = _zip(*state_dict_pickle(small))
    return {
        "state_dict": state_dict,
        "nested_model": _zip(*state_dict_pickle(small, wrap="model")),
        "nested_state_dict": _zip(*state_dict_pickle(small, wrap="state_dict")),
        "every_dtype": _zip(*state_dict_pickle(every_dtype)),
        "empty_tensors": _zip(*state_dict_pickle(empty)),
        "views_and_parameters": _zip(*_views()),
        "deflated": write_members(read_members(state_dict) or [], zipfile.ZIP_DEFLATED),
        "os_system_reduce": _zip(_hostile(), {}),
    }


def corpus() -> dict[str, bytes]:
    """Relative path under tests/fuzz/corpus -> file contents."""
    files = {f"safetensors/{k}.safetensors": v for k, v in safetensors_corpus().items()}
    return files | {f"pt/{k}.pt": v for k, v in pt_corpus().items()}


def main() -> None:
    for directory in ("safetensors", "pt"):
        (CORPUS_DIR / directory).mkdir(parents=True, exist_ok=True)
        for stale in (CORPUS_DIR / directory).iterdir():
            stale.unlink()
    for name, data in corpus().items():
        (CORPUS_DIR / name).write_bytes(data)
    print(f"wrote {len(corpus())} files to {CORPUS_DIR}")


if __name__ == "__main__":
    main()
