"""Read PyTorch zip checkpoints (`torch.save`, PyTorch >= 1.6) without torch and without
running pickle code: storages come from the archive, tensors are rebuilt by our stand-ins.
"""

from __future__ import annotations

import functools
import os
import re
import zipfile
from collections.abc import Callable
from typing import BinaryIO

from .errors import CheckpointError
from .pt_pickle import AllowedGlobal, restricted_unpickle
from .pt_tensor import PtTensor, Storage, rebuild_parameter, rebuild_tensor
from .tensor import DTYPE_CODES, DTYPE_SIZES, HostTensor

MAX_PICKLE_BYTES = 64 << 20
MAX_TOTAL_BYTES = 4 << 30

_LEGACY_STORAGES = {
    "FloatStorage": "F32",
    "DoubleStorage": "F64",
    "HalfStorage": "F16",
    "BFloat16Storage": "BF16",
    "LongStorage": "I64",
    "IntStorage": "I32",
    "ShortStorage": "I16",
    "CharStorage": "I8",
    "ByteStorage": "U8",
    "BoolStorage": "BOOL",
}
_STORAGE_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")


class StorageType(AllowedGlobal):
    """Stand-in for a storage class or dtype named in a persistent id."""

    __slots__ = ("dtype",)

    def __init__(self, qualname: str, dtype: str) -> None:
        super().__init__(qualname)
        self.dtype = dtype


def _storage_types() -> dict[str, AllowedGlobal]:
    types: dict[str, AllowedGlobal] = {}
    for name, dtype in _LEGACY_STORAGES.items():
        types[f"torch.{name}"] = StorageType(f"torch.{name}", dtype)
    for name, dtype in DTYPE_CODES.items():
        types[f"torch.{name}"] = StorageType(f"torch.{name}", dtype)
    for qualname in ("torch.UntypedStorage", "torch.storage.UntypedStorage"):
        types[qualname] = StorageType(qualname, "U8")
    return types


def _allowed_globals(charge: Callable[[int], None]) -> dict[str, AllowedGlobal]:
    # Fresh stand-ins per load: nothing a file does can leak into the next load.
    allowed = _storage_types()
    for name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
        allowed[f"torch._utils.{name}"] = AllowedGlobal(f"torch._utils.{name}", rebuild_parameter)
    allowed["torch._utils._rebuild_tensor_v2"] = AllowedGlobal(
        "torch._utils._rebuild_tensor_v2", functools.partial(rebuild_tensor, charge=charge)
    )
    allowed["collections.OrderedDict"] = AllowedGlobal("collections.OrderedDict", _ordered_dict)
    return allowed


class _PickledDict(dict[object, object]):
    """What `collections.OrderedDict()` builds: a dict (insertion-ordered anyway)."""

    def __setstate__(self, state: object) -> None:
        # torch.save attaches `_metadata` (module versions) to state dicts; we do not need it.
        if not isinstance(state, dict):
            raise CheckpointError("data.pkl sets a non-dict state on a dict: refusing")


def _ordered_dict(*args: object) -> _PickledDict:
    if args:
        raise CheckpointError("collections.OrderedDict is called with arguments; refusing")
    return _PickledDict()


def _read_member(archive: zipfile.ZipFile, name: str, limit: int) -> bytes:
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise CheckpointError(
            f"archive has no member {name!r}: not a torch.save checkpoint"
        ) from None
    if info.compress_type != zipfile.ZIP_STORED:
        # A compressed record can expand to far more than the file holds.
        raise CheckpointError(
            f"archive member {name!r} is compressed, but torch.save stores every record "
            "uncompressed: re-save the checkpoint with torch.save"
        )
    if info.file_size > limit:
        raise CheckpointError(f"archive member {name!r} is {info.file_size} bytes, over {limit}")
    try:
        data = archive.read(info)
    except Exception as exc:
        raise CheckpointError(
            f"archive member {name!r} is corrupt ({type(exc).__name__}: {exc}): re-download it"
        ) from None
    if len(data) != info.file_size:
        raise CheckpointError(f"archive member {name!r} is truncated: re-download the file")
    return data


class _Loader:
    """Per-load state: the archive, its record prefix, loaded storages and a byte budget."""

    def __init__(self, archive: zipfile.ZipFile, prefix: str, max_total_bytes: int) -> None:
        self._archive = archive
        self._prefix = prefix
        self._budget = self._limit = max_total_bytes
        self._storages: dict[str, Storage] = {}
        self._stored = self._copied = 0

    def charge(self, nbytes: int) -> None:
        """Account for `nbytes` about to be allocated; fail once over max_total_bytes."""
        if nbytes > self._budget:
            raise CheckpointError(
                f"checkpoint needs more than max_total_bytes ({self._limit}) of tensor data: "
                "it is hostile or larger than expected; raise the limit only if you trust it"
            )
        self._budget -= nbytes

    def charge_copy(self, nbytes: int) -> None:
        """Account for a tensor copied out of a storage (a partial or strided view).

        Views cannot copy more bytes than the storages hold: otherwise a few bytes of pickle,
        rebuilding one view over and over, cost time and memory far beyond the file's size.
        """
        self._copied += nbytes
        if self._copied > self._stored:
            raise CheckpointError(
                f"tensor views copy {self._copied} bytes out of storages holding {self._stored}: "
                "views overlap; the file is hostile or corrupt"
            )
        self.charge(nbytes)

    def persistent_load(self, pid: object) -> Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise CheckpointError(f"unsupported persistent id {pid!r:.80}: not a torch storage")
        _, storage_type, key, location, numel = pid
        if not isinstance(storage_type, StorageType):
            raise CheckpointError(f"persistent id names {storage_type!r:.80}, not a storage type")
        if not isinstance(key, str) or not _STORAGE_KEY.fullmatch(key):
            raise CheckpointError(f"storage key {key!r:.80} is not a plain record name")
        if not isinstance(location, str) or isinstance(numel, bool) or not isinstance(numel, int):
            raise CheckpointError(f"storage {key!r} has an invalid location or size")
        cached = self._storages.get(key)
        if cached is not None:
            if (cached.dtype, cached.numel) != (storage_type.dtype, numel):
                raise CheckpointError(f"storage {key!r} is declared twice with different types")
            return cached
        storage = self._read_storage(key, storage_type.dtype, numel)
        self._storages[key] = storage
        return storage

    def _read_storage(self, key: str, dtype: str, numel: int) -> Storage:
        name = f"{self._prefix}data/{key}"
        if numel < 0:
            raise CheckpointError(f"storage {key!r} declares a negative size {numel}")
        declared = numel * DTYPE_SIZES[dtype]
        try:
            stored = self._archive.getinfo(name).file_size
        except KeyError:
            raise CheckpointError(f"storage {key!r} is missing from the archive ({name})") from None
        if declared != stored:
            relation = "exceeds" if declared > stored else "is smaller than"
            raise CheckpointError(
                f"storage {key!r} declares {numel} x {dtype} = {declared} bytes, which "
                f"{relation} the {stored} bytes stored in {name}: the file is corrupt"
            )
        self.charge(declared)
        self._stored += declared
        return Storage(key, dtype, numel, _read_member(self._archive, name, declared))


def _find_prefix(archive: zipfile.ZipFile) -> str:
    names = archive.namelist()
    if len(set(names)) != len(names):
        raise CheckpointError("archive has duplicate member names: it is malformed or tampered")
    pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        found = "no" if not pickles else f"{len(pickles)}"
        raise CheckpointError(
            f"archive has {found} <name>/data.pkl record(s); expected exactly one as written "
            "by torch.save (PyTorch >= 1.6)"
        )
    return pickles[0][: -len("data.pkl")]


def _check_byteorder(archive: zipfile.ZipFile, prefix: str) -> None:
    name = f"{prefix}byteorder"
    # Checkpoints from before the record existed were all written little-endian.
    if name not in archive.NameToInfo:
        return
    order = _read_member(archive, name, 16)
    if order == b"big":
        raise CheckpointError("checkpoint is big-endian: re-save it on a little-endian machine")
    if order != b"little":
        raise CheckpointError(f"checkpoint has an unknown byteorder record {order!r:.20}")


def _open_archive(source: str | os.PathLike[str] | BinaryIO) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(source)
    except (FileNotFoundError, PermissionError, IsADirectoryError):
        raise
    except Exception as exc:
        # zipfile reports damaged archives through many types (BadZipFile, struct.error,
        # OSError from a bad seek, ...): all mean the same thing here.
        raise CheckpointError(
            f"checkpoint is not a readable zip archive ({exc}): only the zip format of "
            "torch.save (PyTorch >= 1.6) is supported; re-save it with a current torch"
        ) from None


def _tensor_dict(obj: dict[object, object], where: str) -> dict[str, HostTensor]:
    tensors: dict[str, HostTensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            # The type only: a hostile key's repr can fail (deep nesting, huge integers).
            raise CheckpointError(f"{where} has a non-string key of type {type(key).__name__}")
        if not isinstance(value, PtTensor):
            raise CheckpointError(
                f"{where} entry {key!r} is not a tensor but {type(value).__name__}: "
                "save model.state_dict() only"
            )
        tensors[key] = value.tensor
    if not tensors:
        raise CheckpointError(f"{where} contains no tensors")
    return tensors


def _state_dict(obj: object) -> dict[str, HostTensor]:
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"checkpoint holds {type(obj).__name__}, not a dict of tensors: save a state dict"
        )
    if obj and all(isinstance(value, PtTensor) for value in obj.values()):
        return _tensor_dict(obj, "checkpoint")
    nested = [key for key in ("model", "state_dict") if isinstance(obj.get(key), dict)]
    if len(nested) == 1:
        inner = obj[nested[0]]
        assert isinstance(inner, dict)
        return _tensor_dict(inner, f"checkpoint[{nested[0]!r}]")
    if nested:
        raise CheckpointError("checkpoint has both 'model' and 'state_dict': save just one")
    return _tensor_dict(obj, "checkpoint")


def read_pt(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    max_pickle_bytes: int = MAX_PICKLE_BYTES,
    max_total_bytes: int = MAX_TOTAL_BYTES,
) -> dict[str, HostTensor]:
    """Read a `torch.save` zip checkpoint into {name: HostTensor}, in the file's order.

    Accepts a plain state dict, or a dict holding one under "model" or "state_dict".
    `max_total_bytes` caps the storage and copied tensor bytes, and views may copy no more
    than the storages hold; compressed records are refused. Raises `CheckpointError`.
    """
    with _open_archive(source) as archive:
        prefix = _find_prefix(archive)
        _check_byteorder(archive, prefix)
        data = _read_member(archive, f"{prefix}data.pkl", max_pickle_bytes)
        loader = _Loader(archive, prefix, max_total_bytes)
        allowed = _allowed_globals(loader.charge_copy)
        obj = restricted_unpickle(data, allowed, loader.persistent_load)
    return _state_dict(obj)
