"""Fixtures shared by the API tests."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from sandseg.server.api import ApiSettings
from sandseg.server.app import create_app
from sandseg.server.engine import Cancelled


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    """A minimal web bundle: the API tests need the app, not the page."""
    root = tmp_path_factory.mktemp("bundle")
    (root / "index.html").write_text("<!doctype html><title>sandseg</title>")
    return root


@pytest.fixture(scope="module")
def make_client(bundle, converted_weights, offload_engine):
    """TestClient of the real app on the session's engine, with the given settings."""

    def make(settings: ApiSettings | None = None, **kwargs: Any) -> TestClient:
        app = create_app(
            bundle,
            converted_weights,
            hosts={"testserver"},
            engine=offload_engine,
            settings=settings or ApiSettings(),
            **kwargs,
        )
        return TestClient(app, raise_server_exceptions=False)

    return make


@pytest.fixture(scope="module")
def client(make_client) -> TestClient:
    return make_client()


def record_jobs(
    monkeypatch: pytest.MonkeyPatch, engine: Any, started: threading.Event | None = None
) -> list[tuple[str, float]]:
    """How each run_stages job ended ("finished", or "stopped after <stage>") and when;
    `started` is set as a job begins on the GPU thread."""
    jobs: list[tuple[str, float]] = []
    real = engine.run_stages

    def recorded(*args: Any) -> bytes:
        if started is not None:
            started.set()
        try:
            result = real(*args)
        except Cancelled as exc:
            jobs.append((f"stopped after {exc.args[0]}", time.monotonic()))
            raise
        jobs.append(("finished", time.monotonic()))
        return result

    monkeypatch.setattr(engine, "run_stages", recorded)
    return jobs


def server_timing(response: Any) -> dict[str, float]:
    """Server-Timing "queue;dur=1.0, compute;dur=2.0" -> {"queue": 1.0, "compute": 2.0} (ms);
    entries without a duration are left out."""
    durations = {}
    for entry in response.headers["server-timing"].split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        for param in params:
            if param.startswith("dur="):
                durations[name] = float(param.removeprefix("dur="))
    return durations


# Weights that are not the demo weights: the conformance checkpoint with one value changed
# (so they load and run like it, and sandseg.weights.identity must not take them for it).
OTHER_KEY = "mask_decoder.iou_token.weight"


@pytest.fixture(scope="session")
def other_checkpoint(tmp_path_factory) -> Path:
    """A .pt in the official layout whose tensors are not the demo weights'."""
    from sandseg.weights import HostTensor, read_pt
    from tests.conftest import require
    from tests.weights.ptwriter import write_checkpoint

    tensors = read_pt(require("mobile_sam_seed1234.pt"))
    changed = bytearray(tensors[OTHER_KEY].data)
    changed[0] ^= 0x01
    tensors[OTHER_KEY] = HostTensor("F32", tensors[OTHER_KEY].shape, bytes(changed))
    return write_checkpoint(tmp_path_factory.mktemp("other") / "mobile_sam.pt", tensors)


@pytest.fixture(scope="session")
def other_weights(other_checkpoint, tmp_path_factory) -> Path:
    """other_checkpoint converted (with its manifest)."""
    from sandseg.weights import convert_checkpoint

    out = tmp_path_factory.mktemp("other_weights") / "other.safetensors"
    convert_checkpoint(other_checkpoint, out)
    return out
