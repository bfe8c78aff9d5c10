"""Issue 14 in Chromium: every matmul and conv2d variant the browser's adapter offers (WebGPU on
SwiftShader here), pinned in turn in the page's worker, against exact products, with guard
sentinels after each output (GP-3). sandseg.browser.testing.check_matmul_variants runs them."""

from __future__ import annotations

from typing import Any


def test_every_matmul_variant_is_exact_in_the_browser(app_page: Any) -> None:
    results = app_page.evaluate("() => window.sandseg.getClient().checkMatmulVariantsForTesting()")
    offered = sorted({r["variant"] for r in results})
    # subgroup and subgroup8 only where the adapter has `subgroups`: named in the output.
    print(f"matmul variants on the browser's adapter: {', '.join(offered)}")
    assert {"blocked", "blocked8x8", "tiled64", "tiled128x64"} <= set(offered), offered
    assert len(results) == 3 * len(offered)
    bad = [r for r in results if r["wrong"] or not r["guard"]]
    assert not bad, bad


def test_every_conv2d_variant_is_exact_in_the_browser(app_page: Any) -> None:
    results = app_page.evaluate("() => window.sandseg.getClient().checkConv2dVariantsForTesting()")
    offered = sorted({r["variant"] for r in results})
    print(f"conv2d variants on the browser's adapter: {', '.join(offered)}")
    assert "blocked" in offered and len(results) == 2 * len(offered), results
    bad = [r for r in results if r["wrong"] or not r["guard"]]
    assert not bad, bad
