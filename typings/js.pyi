# The JS globals sandseg touches through Pyodide's `js` module (sandseg/browser/ and
# gpu/browser.py), for mypy; in the browser the module is Pyodide's. Values from JS are JsProxy
# objects whose attributes are only known at run time, hence Any.
from typing import Any

from pyodide.ffi import JsProxy

class _Constructor(JsProxy):
    def new(self, *args: Any) -> Any: ...

class _ObjectStatics(JsProxy):
    def fromEntries(self, entries: Any) -> Any: ...

class _Console(JsProxy):
    def warn(self, *data: Any) -> None: ...

class _Performance(JsProxy):
    def now(self) -> float: ...

Object: _ObjectStatics
Uint8Array: _Constructor
console: _Console
performance: _Performance
navigator: Any
GPUBufferUsage: Any
GPUShaderStage: Any
GPUMapMode: Any

async def fetch(resource: str, options: Any = ...) -> Any: ...
