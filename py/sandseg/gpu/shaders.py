"""WGSL sources, loaded by kernel name from the `shaders` folder.

A kernel file may pull in shared helpers with a line `//! include NAME.wgsl`, which is replaced
by `shaders/include/NAME.wgsl`. Nothing else is rewritten: tunables are WGSL `override`
constants, set per pipeline.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

_INCLUDE = "//! include "


def shader_dir() -> Path:
    """The installed package data (wheel, Pyodide), or ./shaders in a source checkout."""
    packaged = Path(str(resources.files("sandseg"))) / "shaders"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[3] / "shaders"


def kernel_names() -> list[str]:
    return sorted(p.stem for p in shader_dir().glob("*.wgsl"))


@functools.cache
def load_shader(name: str) -> str:
    path = shader_dir() / f"{name}.wgsl"
    if not path.is_file():
        raise FileNotFoundError(f"no WGSL kernel named {name!r} in {shader_dir()}")
    return _expand_includes(path.read_text(encoding="utf-8"), name)


def _expand_includes(source: str, name: str) -> str:
    lines = []
    for line in source.splitlines():
        if line.startswith(_INCLUDE):
            include = shader_dir() / "include" / line[len(_INCLUDE) :].strip()
            if not include.is_file():
                raise FileNotFoundError(f"kernel {name!r} includes missing file {include.name!r}")
            lines.append(include.read_text(encoding="utf-8"))
        else:
            lines.append(line)
    return "\n".join(lines)
