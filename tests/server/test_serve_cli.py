"""`sandseg serve` refuses what would expose or corrupt the server before it serves anything
(SV-5 the bind and token, FT-4 the weights), and, as a real process, drains on SIGTERM (FT-3).

The refusals run `sandseg.cli.main` in-process with the engine replaced by one that fails the
test if it is ever built: every refusal must come before the model is loaded."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import numpy as np
import pytest

from sandseg.cli import build_parser, main
from sandseg.inputs import Prompt
from sandseg.offload import messages
from sandseg.weights import manifest_path
from tests.conftest import require

SANDSEG = Path(sys.executable).with_name("sandseg")
GOOD_TOKEN = "k" * 32


class EngineReached(Exception):
    pass


@pytest.fixture(autouse=True)
def no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the engine means every check passed: stop there, before any GPU work."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise EngineReached("the checks passed and the engine was about to load")

    monkeypatch.setattr("sandseg.server.engine.Engine", refuse)
    monkeypatch.delenv("SANDSEG_TOKEN", raising=False)


def serve(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """`sandseg serve ARGS` in-process: the exit code and what it printed on stderr."""
    code = main(["serve", *args])
    return code, capsys.readouterr().err


# -- the runtime flags ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "dest"),
    [
        (["serve", "--runtime"], "runtime"),
        (["bench", "offload", "--weights", "w.safetensors", "--server-runtime"], "server_runtime"),
    ],
)
def test_the_runtime_flags_take_auto_and_each_runtime_by_name(capsys, prefix, dest) -> None:
    """`serve --runtime` and `bench offload --server-runtime` (which names serve's) take the
    same words; argparse refuses any other before anything runs."""
    for name in ("auto", "wgpu", "onnxruntime"):
        assert getattr(build_parser().parse_args([*prefix, name]), dest) == name
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args([*prefix, "cuda"])
    assert refused.value.code == 2 and "invalid choice: 'cuda'" in capsys.readouterr().err


# -- SV-5: no exposed server without a token -------------------------------------------------


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7"])
@pytest.mark.requirement("SV-5")
def test_a_public_bind_without_a_token_is_refused_first(capsys, tmp_path, host) -> None:
    # The bundle is missing too: the bind is checked before anything else.
    code, err = serve(capsys, "--host", host, "--bundle", str(tmp_path / "none"))
    assert code == 2
    assert f"refusing to listen on {host} without a token" in err
    assert "--token" in err and "SANDSEG_TOKEN" in err
    assert "Traceback" not in err and "no web bundle" not in err


@pytest.mark.parametrize("token", ["short", "a b" * 8, "é" * 20])
def test_a_weak_token_is_refused(capsys, tmp_path, token) -> None:
    code, err = serve(
        capsys, "--host", "0.0.0.0", "--token", token, "--bundle", str(tmp_path / "none")
    )
    assert code == 2
    assert "the token must be at least 16 printable ASCII characters" in err


def test_a_token_from_the_environment_is_accepted(capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SANDSEG_TOKEN", GOOD_TOKEN)
    code, err = serve(capsys, "--host", "0.0.0.0", "--bundle", str(tmp_path / "none"))
    # Past the bind check: the next refusal is the missing bundle.
    assert code == 2
    assert "no web bundle in" in err and "python build.py" in err
    assert "refusing" not in err and "the token must" not in err


def test_loopback_and_a_given_token_pass_the_bind_check(capsys, tmp_path) -> None:
    for args in [[], ["--host", "0.0.0.0", "--token", GOOD_TOKEN], ["--host", "::1"]]:
        code, err = serve(capsys, *args, "--bundle", str(tmp_path / "none"))
        assert code == 2 and "no web bundle in" in err, args


# -- FT-4: corrupt weights refuse to start ---------------------------------------------------


@pytest.fixture
def weights(tmp_path: Path, converted_weights: Path) -> Path:
    """A private copy of the converted weights and their manifest."""
    folder = tmp_path / "weights"
    folder.mkdir()
    copy = folder / converted_weights.name
    shutil.copyfile(converted_weights, copy)
    shutil.copyfile(manifest_path(converted_weights), manifest_path(copy))
    return copy


def data_offset(path: Path) -> int:
    """Where a .safetensors file's tensor data starts (after the length and header)."""
    with path.open("rb") as f:
        return 8 + int.from_bytes(f.read(8), "little")


def test_intact_weights_pass_the_checks(bundle, weights) -> None:
    args = ["serve", "--weights", str(weights), "--bundle", str(bundle)]
    with pytest.raises(EngineReached):
        main(args)
    recorded = json.loads(manifest_path(weights).read_text())["output_sha256"]
    manifest_path(weights).unlink()
    with pytest.raises(EngineReached):
        main([*args, "--weights-sha256", recorded.upper()])


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 4096])


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    at = data_offset(path) + 12345
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "expected"),
    [
        (truncate, "but its manifest records"),
        (flip_one_byte, "but its manifest records"),
    ],
    ids=["truncated", "one-flipped-byte"],
)
@pytest.mark.requirement("FT-4")
def test_damaged_weights_refuse_to_start(capsys, bundle, weights, damage, expected) -> None:
    recorded = json.loads(manifest_path(weights).read_text())["output_sha256"]
    damage(weights)
    code, err = serve(capsys, "--weights", str(weights), "--bundle", str(bundle))
    assert code == 2
    assert f"{weights.name} has sha256 " in err and expected in err and recorded in err
    assert "re-download or re-convert" in err
    assert "Traceback" not in err
    # Pinned on the command line instead, the damage is caught the same way.
    manifest_path(weights).unlink()
    code, err = serve(
        capsys, "--weights", str(weights), "--bundle", str(bundle), "--weights-sha256", recorded
    )
    assert code == 2 and f"expected {recorded}" in err


@pytest.mark.requirement("FT-4", "SV-5")
def test_weights_pinned_to_another_hash_refuse_to_start(capsys, bundle, weights) -> None:
    wrong = "0123456789abcdef" * 4
    code, err = serve(
        capsys, "--weights", str(weights), "--bundle", str(bundle), "--weights-sha256", wrong
    )
    assert code == 2
    assert f"expected {wrong}" in err and "corrupt or not the pinned version" in err


@pytest.mark.requirement("FT-4", "SV-5")
def test_weights_without_a_manifest_or_a_pin_refuse_to_start(capsys, bundle, weights) -> None:
    manifest_path(weights).unlink()
    code, err = serve(capsys, "--weights", str(weights), "--bundle", str(bundle))
    assert code == 2
    assert "has no manifest" in err and "--weights-sha256" in err


def test_an_unreadable_manifest_refuses_to_start(capsys, bundle, weights) -> None:
    manifest_path(weights).write_text("{not json")
    code, err = serve(capsys, "--weights", str(weights), "--bundle", str(bundle))
    assert code == 2
    assert f"manifest {manifest_path(weights).name} is unreadable" in err


# -- SV-8: a .pt is converted by a child process, never by the server -----------------------


@pytest.fixture
def no_unpickling(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The pickle reader fails the test if this (the server's) process ever calls it; the
    weights cache is private to the test. Returns the cache."""

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the server process unpickled a checkpoint (SV-8)")

    monkeypatch.setattr("sandseg.weights.convert.read_pt", refuse)
    monkeypatch.setenv("SANDSEG_HOME", str(tmp_path / "home"))
    return tmp_path / "home" / "weights"


@pytest.mark.requirement("SV-8")
def test_serve_converts_a_pt_in_a_subprocess_once(capsys, bundle, no_unpickling) -> None:
    checkpoint = require("mobile_sam_seed1234.pt")
    args = ["serve", "--weights", str(checkpoint), "--bundle", str(bundle)]
    with pytest.raises(EngineReached):
        main(args)
    err = capsys.readouterr().err
    # The child's own progress, relayed; then the server goes on with what it wrote.
    assert "converting in a subprocess: sandseg convert mobile_sam_seed1234.pt" in err
    assert "convert: 439 tensors match the MobileSAM vit_t layout" in err
    [converted] = no_unpickling.glob("*.safetensors")
    digest = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    assert converted.name == f"mobile_sam_seed1234-{digest[:16]}.safetensors"
    assert json.loads(manifest_path(converted).read_text())["source_sha256"] == digest
    # Cached by the checkpoint's sha256: the next start converts nothing.
    with pytest.raises(EngineReached):
        main(args)
    assert "converting" not in capsys.readouterr().err


@pytest.mark.requirement("SV-8")
def test_a_checkpoint_that_fails_to_convert_refuses_to_start(
    capsys, bundle, no_unpickling, tmp_path
) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"PK\x03\x04 not a zip archive at all")
    code, err = serve(capsys, "--weights", str(broken), "--bundle", str(bundle))
    assert code == 2
    # The child's one-line reason, named as the conversion's; no half-written weights.
    assert "sandseg: error: converting broken.pt failed (exit 2): " in err
    assert "zip" in err.lower() and "Traceback" not in err
    assert list(no_unpickling.iterdir()) == []


# -- FT-3: SIGTERM on a real `sandseg serve` -------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def readyz(url: str) -> int | None:
    """/readyz's status, or None when nothing answers."""
    try:
        return httpx2.get(f"{url}/readyz", timeout=2).status_code
    except httpx2.TransportError:
        return None


def busy_probe(url: str) -> int:
    """A predict for an image nobody uploaded: 404 when admitted, 503 while the GPU is busy
    (with --queue 0)."""
    return httpx2.post(
        f"{url}/api/v1/images/{'0' * 64}/predict",
        content=messages.encode_prompt(Prompt.of([[1, 1]], [1])),
        headers={"Content-Type": "application/octet-stream"},
        timeout=10,
    ).status_code


@pytest.mark.gpu
@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGTERM is POSIX")
@pytest.mark.requirement("FT-3")
def test_sigterm_drains_a_real_server(tmp_path, bundle, converted_weights) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "SANDSEG_TOKEN"}
    env.update(XDG_RUNTIME_DIR=os.environ.get("XDG_RUNTIME_DIR", "/tmp"), PYTHONUNBUFFERED="1")
    command = [str(SANDSEG), "serve", "--weights", str(converted_weights)]
    command += ["--bundle", str(bundle), "--port", str(port)]
    # No queue: a probe predict is refused (503) exactly while a job holds the GPU. On wgpu
    # (lavapipe) the long request takes seconds, long enough to send SIGTERM in the middle.
    command += ["--allow-host", f"proxy.example:{port}", "--queue", "0", "--runtime", "wgpu"]
    with np.load(require("picture1_seed1234_encoder_stages.npz")) as data:
        x = data["layers_0"].reshape(128, 128, 128)
    body = messages.encode_tensor("x", x.tobytes(), x.shape, "F32")
    log = tmp_path / "serve.log"
    with log.open("wb") as out, subprocess.Popen(command, stdout=out, stderr=out, env=env) as proc:
        try:
            # Loading and profiling the model (3 full encodes) comes first.
            deadline = time.monotonic() + 120
            while readyz(url) != 200:
                assert proc.poll() is None, f"serve exited: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, "not ready within 300 s"
                time.sleep(0.2)
            healthz = f"{url}/healthz"
            assert httpx2.get(healthz, headers={"Host": f"proxy.example:{port}"}).is_success
            assert httpx2.get(healthz, headers={"Host": "other.example"}).status_code == 403

            answers: list[httpx2.Response] = []

            def long_request() -> None:
                answers.append(
                    httpx2.post(
                        f"{url}/api/v1/stages/layers.1",
                        content=body,
                        headers={"Content-Type": "application/octet-stream"},
                        timeout=60,
                    )
                )

            client = threading.Thread(target=long_request)
            client.start()
            # SIGTERM once the long request is on the GPU (~4 s of work), not after a fixed
            # wait that a busy machine's slow upload can outlast.
            deadline = time.monotonic() + 60
            while busy_probe(url) != 503:
                assert client.is_alive() and time.monotonic() < deadline, "never in flight"
                time.sleep(0.05)
            proc.send_signal(signal.SIGTERM)
            stopped = time.monotonic()
            # Readiness goes false at once: 503 while draining, then nothing listens.
            probes = []
            while time.monotonic() - stopped < 1.0:
                probes.append(readyz(url))
                time.sleep(0.05)
            assert 200 not in probes, probes
            client.join(timeout=30)
            code = proc.wait(timeout=max(1.0, 30 - (time.monotonic() - stopped)))
            exited_s = time.monotonic() - stopped
        finally:
            if proc.poll() is None:
                proc.kill()
    output = log.read_text()
    print(f"\nSIGTERM: exited after {exited_s:.1f} s with {code}; /readyz probes {set(probes)}")
    assert answers and answers[0].status_code == 200, "the request in flight did not finish"
    embeddings, _ = messages.decode_embeddings(answers[0].content)
    assert len(embeddings) == 64 * 64 * 256 * 4
    assert exited_s < 30
    # uvicorn re-raises the signal once it has drained, so the process ends by SIGTERM (as
    # test_lifecycle's GracefulServer does): the parent sees -SIGTERM, not a crash code.
    assert code == -signal.SIGTERM, output[-2000:]
    assert "Traceback" not in output, output[-4000:]
