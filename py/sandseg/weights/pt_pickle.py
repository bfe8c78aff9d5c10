"""Restricted unpickling for `.pt` checkpoints: an opcode pre-scan plus an allowlisted
`find_class`. Nothing outside the allowlist is ever imported or called.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from collections.abc import Callable, Mapping
from typing import Any

from .errors import CheckpointError

# What torch.save writes for a state dict, plus harmless data opcodes. Left out on purpose:
# INST/OBJ/NEWOBJ/NEWOBJ_EX (instantiate classes), EXT1/2/4 (copyreg registry), PERSID (text
# persistent ids torch never writes), sets and out-of-band buffers (never in a state dict).
# fmt: off
_ALLOWED_OPCODES = frozenset({
    "PROTO", "FRAME", "STOP", "MARK", "POP", "POP_MARK", "DUP",
    "GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "BINPERSID",
    "NONE", "NEWTRUE", "NEWFALSE", "INT", "BININT", "BININT1", "BININT2",
    "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
    "EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "EMPTY_LIST", "LIST", "APPEND",
    "APPENDS", "EMPTY_DICT", "DICT", "SETITEM", "SETITEMS",
    "PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE", "GET", "BINGET", "LONG_BINGET",
})
# fmt: on
_PUT_OPCODES = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


class AllowedGlobal:
    """What an allowlisted global resolves to: our own stand-in, never the real object.

    Instances are immutable to the pickle stream (BUILD is refused), so a hostile file cannot
    change the behaviour of a later load through shared state.
    """

    __slots__ = ("_call", "qualname")

    def __init__(self, qualname: str, call: Callable[..., Any] | None = None) -> None:
        self.qualname = qualname
        self._call = call

    def __call__(self, *args: Any) -> Any:
        if self._call is None:
            raise CheckpointError(f"data.pkl calls {self.qualname}, which is not callable here")
        return self._call(*args)

    def __setstate__(self, state: object) -> None:
        raise CheckpointError(f"data.pkl tries to modify {self.qualname} (BUILD): refusing")

    def __repr__(self) -> str:
        return f"<allowed {self.qualname}>"


def _disallowed(qualname: str) -> CheckpointError:
    return CheckpointError(
        f"data.pkl references {qualname}, which is not allowed: a checkpoint may only use "
        "tensor-rebuild functions, storage types and collections.OrderedDict. The file may "
        "be malicious; do not open it with PyTorch either"
    )


def _prescan(data: bytes, allowed: Mapping[str, object]) -> None:
    # Walks the opcodes without executing them. Besides early, precise errors this bounds the
    # memo: the C unpickler sizes its memo table from the largest PUT index it sees.
    memo_size = 0
    end = 0
    for opcode, arg, pos in pickletools.genops(data):
        name = opcode.name
        if name in ("GLOBAL", "INST"):
            qualname = str(arg).replace(" ", ".", 1)
            if qualname not in allowed:
                raise _disallowed(qualname)
        if name not in _ALLOWED_OPCODES:
            raise CheckpointError(
                f"data.pkl uses pickle opcode {name} at byte {pos}, which a tensor checkpoint "
                "never needs: refusing to load it"
            )
        if name in _PUT_OPCODES:
            if not isinstance(arg, int) or arg > memo_size:
                raise CheckpointError(f"data.pkl has an out-of-order memo index {arg} at {pos}")
            memo_size = max(memo_size, arg + 1)
        elif name == "MEMOIZE":
            memo_size += 1
        end = (pos or 0) + 1
    if end != len(data):
        raise CheckpointError(f"data.pkl has {len(data) - end} bytes after its STOP opcode")


class _Unpickler(pickle.Unpickler):
    def __init__(
        self,
        data: bytes,
        allowed: Mapping[str, object],
        persistent_load: Callable[[object], object],
    ) -> None:
        super().__init__(io.BytesIO(data))
        self._allowed = allowed
        self._persistent = persistent_load

    def find_class(self, module: str, name: str) -> Any:
        qualname = f"{module}.{name}"
        obj = self._allowed.get(qualname)
        if obj is None:
            raise _disallowed(qualname)
        return obj

    def persistent_load(self, pid: object) -> object:
        return self._persistent(pid)


def restricted_unpickle(
    data: bytes, allowed: Mapping[str, object], persistent_load: Callable[[object], object]
) -> object:
    """Unpickle `data`, resolving globals only through `allowed` ("module.name" -> object)."""
    try:
        _prescan(data, allowed)
        return _Unpickler(data, allowed, persistent_load).load()
    except CheckpointError:
        raise
    except Exception as exc:
        # Anything else (truncated stream, bad opcode argument, wrong call arity) means the
        # pickle is broken; report it as a checkpoint problem with the original reason.
        raise CheckpointError(
            f"data.pkl is not a valid checkpoint pickle ({type(exc).__name__}: {exc}): "
            "the file is corrupt; re-save it with torch.save"
        ) from None
