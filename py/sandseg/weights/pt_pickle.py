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
_GET_OPCODES = frozenset({"GET", "BINGET", "LONG_BINGET"})
_TUPLE_OPCODES = frozenset({"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"})
_SLICE = (pickletools.markobject, pickletools.stackslice)
# A state dict nests tuples 3 deep. CPython hashes a nested tuple recursively in C with no
# recursion check, so a dict key nested ~100,000 deep would crash the interpreter.
MAX_TUPLE_DEPTH = 100


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


class _TupleDepth:
    """Follows how deeply tuples nest on the unpickler's stack, without running anything.

    Only tuples count: hashing stops at a list or a dict (unhashable), and what an allowed
    call or a persistent load returns is never a tuple.
    """

    def __init__(self) -> None:
        self._stack: list[int] = []  # the tuple depth of each stack item, 0 for non-tuples
        self._marks: list[int] = []
        self._memo: dict[object, int] = {}

    def step(self, opcode: pickletools.OpcodeInfo, arg: object) -> int:
        """Apply `opcode`'s stack effect; return the deepest nesting it pushes (or 0)."""
        name = opcode.name
        if name == "MARK":
            self._marks.append(len(self._stack))
            return 0
        popped: list[int] = []
        if pickletools.markobject in opcode.stack_before:
            start = self._marks.pop() if self._marks else 0
            popped, self._stack[start:] = self._stack[start:], []
        for item in opcode.stack_before:
            if item not in _SLICE:
                popped.append(self._stack.pop() if self._stack else 0)
        if name in _TUPLE_OPCODES:
            pushed = [1 + max(popped, default=0)]
        elif name == "DUP":
            pushed = popped * 2
        elif name == "MEMOIZE":
            # The C unpickler memoizes at the number of filled memo slots.
            pushed = popped
            self._memo[len(self._memo)] = popped[0]
        elif name in _GET_OPCODES:
            pushed = [self._memo.get(arg, 0)]
        else:
            pushed = [0] * len(opcode.stack_after)
        if name in _PUT_OPCODES:
            self._memo[arg] = self._stack[-1] if self._stack else 0
        self._stack += pushed
        return max(pushed, default=0)


def _prescan(data: bytes, allowed: Mapping[str, object]) -> None:
    # Walks the opcodes without executing them. Besides early, precise errors this bounds the
    # memo (the C unpickler sizes its memo table from the largest PUT index it sees) and the
    # nesting of tuples (see MAX_TUPLE_DEPTH).
    memo_size = 0
    end = 0
    depth = _TupleDepth()
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
        if depth.step(opcode, arg) > MAX_TUPLE_DEPTH:
            raise CheckpointError(
                f"data.pkl nests tuples more than {MAX_TUPLE_DEPTH} deep at byte {pos}: a "
                "state dict never does; refusing it"
            )
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
