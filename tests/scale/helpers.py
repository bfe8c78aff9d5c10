"""Request bodies and checks shared by the scale-out tests."""

from __future__ import annotations

import struct
import time

import httpx2 as httpx
import pytest

from sandseg.weights.safetensors import dump_safetensors
from sandseg.weights.tensor import HostTensor

OCTETS = {"Content-Type": "application/octet-stream"}
JPEG = {"Content-Type": "image/jpeg"}
REQUEST_S = 60.0  # no request may wait longer than this (the "nothing hangs" bound)


def click(x: float, y: float, label: int = 1) -> bytes:
    """One point, three masks, the best mask's low-res logits: the page's server-mode click."""
    tensors = {
        "point_coords": HostTensor("F32", (1, 2), struct.pack("<2f", x, y)),
        "point_labels": HostTensor("I32", (1,), struct.pack("<i", label)),
    }
    return dump_safetensors(tensors, {"multimask_output": "true", "low_res": "best"})


def clicks(count: int, width: int, height: int) -> list[bytes]:
    """`count` clicks spread over the image, on a fixed grid (the same in every run)."""
    return [
        click(width * (0.1 + 0.8 * ((i * 7) % count) / count), height * (0.15 + 0.7 * i / count))
        for i in range(count)
    ]


def click_until_answered(client: httpx.Client, sha: str, body: bytes, photo: bytes) -> list:
    """What the page and OffloadPredictor do: a 503 waits its Retry-After and retries, a 404
    uploads the image again. -> every (status, replica, content) seen, the last a 200."""
    seen = []
    deadline = time.monotonic() + REQUEST_S
    while time.monotonic() < deadline:
        r = client.post(f"/api/v1/images/{sha}/predict", content=body, headers=OCTETS)
        seen.append((r.status_code, r.headers.get("x-sandseg-replica"), r.content))
        if r.status_code == 200:
            return seen
        if r.status_code == 503:
            assert r.headers.get("retry-after"), "a 503 without Retry-After"
            time.sleep(float(r.headers["retry-after"]))
        elif r.status_code == 404:
            up = client.post("/api/v1/images", content=photo, headers=JPEG)
            seen.append((up.status_code, up.headers.get("x-sandseg-replica"), b""))
        else:
            pytest.fail(f"HTTP {r.status_code}: {r.text[:300]}")
    pytest.fail(f"no answer within {REQUEST_S} s: {[s[:2] for s in seen]}")


def replica_actors() -> dict[str, str]:
    """Serve replica actor names by the replica id the app reports (X-Sandseg-Replica)."""
    import ray

    from sandseg.scale.ray_serve import DEPLOYMENT

    names = {}
    for actor in ray.util.list_named_actors(all_namespaces=True):
        name = actor["name"]
        if actor["namespace"] == "serve" and name.startswith("SERVE_REPLICA::"):
            names[f"{DEPLOYMENT}-{name.rsplit('#', 1)[-1]}"] = name
    return names


def running_replicas() -> int:
    """How many replicas of the deployment Ray Serve reports RUNNING."""
    from ray import serve

    from sandseg.scale.ray_serve import APP_NAME, DEPLOYMENT

    deployment = serve.status().applications[APP_NAME].deployments[DEPLOYMENT]
    return int(deployment.replica_states.get("RUNNING", 0))
