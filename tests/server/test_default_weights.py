"""`sandseg serve` without --weights (issue 17, item 1): the weights converted last unless they
are the demo weights, else the official checkpoint downloaded, else --fallback-weights (what
scripts/run.sh passes: the demo weights). Serving demo weights says so in one line.

Runs in-process with the engine replaced by one that stops the test where it would load: what
happens before (finding, converting, pinning the weights, the notice) is what is checked."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from sandseg.cli import main
from sandseg.server import serve_cli
from sandseg.weights import manifest_path
from sandseg.weights.identity import DEMO_NOTICE, is_demo
from tests.conftest import require


class EngineReached(Exception):
    pass


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A private SANDSEG_HOME whose official download fails at once (a closed port); the
    engine stops the command where it would load. Returns the weights cache."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise EngineReached

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr("sandseg.server.engine.Engine", refuse)
    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SANDSEG_WEIGHTS_URL", f"http://127.0.0.1:{port}/mobile_sam.pt")
    return tmp_path / "home" / "weights"


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "index.html").write_text("x")
    return tmp_path / "dist"


def _cache(weights: Path, cache: Path) -> Path:
    """weights (and their manifest) copied into the cache, as if converted there before."""
    cache.mkdir(parents=True, exist_ok=True)
    shutil.copy(manifest_path(weights), manifest_path(cache / weights.name))
    return Path(shutil.copy(weights, cache / weights.name))


def test_offline_with_nothing_converted_the_fallback_is_served_and_named_demo(
    home, bundle, capsys
) -> None:
    fallback = require("mobile_sam_seed1234.pt")
    with pytest.raises(EngineReached):
        main(["serve", "--bundle", str(bundle), "--fallback-weights", str(fallback)])
    out, err = capsys.readouterr()
    assert "download failed" in err and f"falling back to {fallback}" in err
    [converted] = home.glob("mobile_sam_seed1234-*.safetensors")  # converted once, cached
    assert is_demo(converted)
    assert out.splitlines() == [DEMO_NOTICE]
    assert "demo weights: seeded random, masks look like noise" in DEMO_NOTICE


def test_without_a_fallback_the_failed_download_is_the_error(home, bundle, capsys) -> None:
    assert main(["serve", "--bundle", str(bundle)]) == 2
    assert "download failed" in capsys.readouterr().err


def test_weights_converted_before_are_served_and_not_called_demo(
    home, bundle, capsys, other_weights
) -> None:
    cached = _cache(other_weights, home)
    fallback = require("mobile_sam_seed1234.pt")
    with pytest.raises(EngineReached):
        main(["serve", "--bundle", str(bundle), "--fallback-weights", str(fallback)])
    out, err = capsys.readouterr()
    assert f"using previously converted weights {cached}" in err
    assert "download failed" not in err and "falling back" not in err
    assert DEMO_NOTICE not in out


def test_demo_weights_converted_before_do_not_stand_in_for_the_official_ones(
    home, converted_weights
) -> None:
    """run.sh used to serve the demo weights by default: converted ones in the cache must not
    keep a user from the official checkpoint."""
    _cache(converted_weights, home)
    lines: list[str] = []
    with pytest.raises(serve_cli.InputError, match="download failed"):
        serve_cli.resolve_weights(None, lines.append)
    assert not any("previously converted" in line for line in lines)


def test_given_demo_weights_are_announced(home, bundle, capsys, converted_weights) -> None:
    with pytest.raises(EngineReached):
        main(["serve", "--bundle", str(bundle), "--weights", str(converted_weights)])
    assert capsys.readouterr().out.splitlines() == [DEMO_NOTICE]
