# The parts of Pyodide's FFI sandseg uses (https://pyodide.org/en/stable/usage/api/python-api/ffi.html).
from collections.abc import Callable
from typing import Any

class JsProxy:
    def __getattr__(self, name: str) -> Any: ...
    def to_py(self, *, depth: int = ..., default_converter: Any = ...) -> Any: ...

class JsException(Exception): ...  # noqa: N818 (Pyodide's name)

class JsNull: ...

jsnull: JsNull

def to_js(
    obj: Any,
    *,
    depth: int = ...,
    pyproxies: Any = ...,
    create_pyproxies: bool = ...,
    dict_converter: Callable[..., Any] | None = ...,
    default_converter: Callable[..., Any] | None = ...,
) -> Any: ...
def create_proxy(obj: Any, *, capture_this: bool = ..., roundtrip: bool = ...) -> Any: ...
