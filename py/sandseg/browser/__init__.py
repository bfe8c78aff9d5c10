"""The Python half of the page's worker (web/worker.js), on Pyodide.

    session.py   Session: the device, the model and the offload session of one worker
    prompt.py    PagePrompt: a predict's prompt as the page sends it, checked once
    weights.py   a safetensors file read from JS memory, one tensor at a time
    recovery.py  the local model and what happens when its GPU device is lost (GP-1)
    marshal.py   results as plain JS objects
    fetch.py     the offload client's transport: the worker's fetch
    annotations.py  the page's objects as COCO JSON and label PNGs, and COCO JSON read back
    testing.py   hooks for the browser tests (test bundles only call them)

With gpu/browser.py, the only modules that import Pyodide's `js` and `pyodide`; typings/
describes the names used, for mypy.
"""
