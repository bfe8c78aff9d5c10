"""Which replica answered: `X-Sandseg-Replica` on every response, and the replica count that
/api/v1/model reports. One process is one replica; under `sandseg serve --ray` each Ray Serve
replica passes its own id and the deployment's count."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = b"x-sandseg-replica"


@dataclass(frozen=True)
class ReplicaInfo:
    """`id`: stable for the life of the replica; `count`: replicas serving the app, or
    `count_now()` asked each time where it changes (autoscaled: the replicas running now, None
    when that cannot be known); `autoscale`: (min, max) replicas when autoscaled; `adapter`: the
    wgpu adapter a Ray replica chose (sandseg.scale.adapters: index, device, type, backend,
    reason), None where nothing was chosen (one process; --runtime onnxruntime)."""

    id: str
    count: int | None = 1
    autoscale: tuple[int, int] | None = None
    adapter: dict[str, object] | None = None
    count_now: Callable[[], int | None] | None = field(default=None, compare=False)

    def describe(self) -> dict[str, object]:
        scale = None
        if self.autoscale is not None:
            scale = {"min": self.autoscale[0], "max": self.autoscale[1]}
        count = self.count if self.count_now is None else self.count_now()
        return {"this": self.id, "count": count, "autoscale": scale, "adapter": self.adapter}


def process_replica() -> ReplicaInfo:
    """This process as the only replica: its id is a digest of host, pid and start time (the
    host name itself is not shown: SV-4)."""
    seed = f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"
    return ReplicaInfo("process-" + hashlib.sha256(seed.encode()).hexdigest()[:12])


class ReplicaHeader:
    """Adds `X-Sandseg-Replica: <id>` to every HTTP response."""

    def __init__(self, app: ASGIApp, replica_id: str) -> None:
        self.app = app
        self.value = replica_id.encode("ascii")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_replica(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (HEADER, self.value)]
            await send(message)

        await self.app(scope, receive, send_with_replica)
