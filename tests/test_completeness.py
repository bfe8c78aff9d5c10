"""Every WGSL kernel has its header, op, numpy reference and test (STYLE.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandseg.gpu.shaders import kernel_names, shader_dir
from sandseg.ops._common import pack
from tests import reference
from tests.gpu_helpers import check_params_packing, params_fields

ROOT = Path(__file__).resolve().parents[1]
OPS_SOURCE = "\n".join(p.read_text() for p in (ROOT / "py" / "sandseg" / "ops").glob("*.py"))


def test_kernels_exist():
    assert len(kernel_names()) >= 2, f"no kernels found in {shader_dir()}"


@pytest.mark.parametrize("name", kernel_names())
def test_kernel_has_header_op_reference_and_test(name):
    source = (shader_dir() / f"{name}.wgsl").read_text()
    assert source.startswith(f"// # {name}"), f"{name}.wgsl must open with a '// # {name}' header"
    assert "Bindings:" in source, f"{name}.wgsl header must list its bindings"
    assert "Grid:" in source, f"{name}.wgsl header must give its grid"
    assert f'"{name}"' in OPS_SOURCE, f"no op in py/sandseg/ops dispatches {name!r}"
    assert callable(getattr(reference, name, None)), f"tests.reference has no function {name!r}"
    assert (ROOT / "tests" / "kernels" / f"test_{name}.py").is_file(), (
        f"no tests/kernels/test_{name}.py"
    )


def test_every_kernel_test_file_has_a_kernel():
    names = set(kernel_names())
    for path in (ROOT / "tests" / "kernels").glob("test_*.py"):
        assert path.stem.removeprefix("test_") in names, f"{path.name} tests no kernel"


@pytest.mark.parametrize("name", kernel_names())
def test_kernel_params_are_scalars_the_ops_can_pack(name):
    """Every field of `struct Params` is a u32, i32 or f32: what ops._common.pack writes and
    what the `device` fixture checks each dispatch's packing against."""
    fields = params_fields(name)
    assert fields, f"{name}.wgsl declares no struct Params"


def test_a_mispacked_dispatch_is_caught():
    """matmul's Params is u32 m, n, k then f32 alpha: packing alpha as a u32 fails, as does a
    missing field; the right packing passes."""
    check_params_packing("matmul", pack("IIIfIIII", 1, 2, 3, 1.0, 0, 0, 0, 0))
    with pytest.raises(AssertionError, match="struct Params declares 'IIIfIIII'"):
        check_params_packing("matmul", pack("8I", 1, 2, 3, 1, 0, 0, 0, 0))
    with pytest.raises(AssertionError, match="packed 'IIIfIII'"):
        check_params_packing("matmul", pack("IIIfIII", 1, 2, 3, 1.0, 0, 0, 0))
