"""X-Sandseg-Replica on every response and the replica count in /api/v1/model (issue 16): one
process is one replica, with an id that stays the same for its life."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from sandseg.server.app import create_app
from sandseg.server.replica import ReplicaInfo

REPLICA = re.compile(r"process-[0-9a-f]{12}")


def test_every_answer_names_the_same_replica(client) -> None:
    answers = [
        client.get("/api/v1/model"),
        client.get("/readyz"),
        client.get("/no-such-file"),  # 404
        client.post("/api/v1/images", content=b"x", headers={"Content-Type": "text/plain"}),
        client.get("/api/v1/model", headers={"Host": "evil.example"}),  # 403
    ]
    assert [r.status_code for r in answers] == [200, 200, 404, 415, 403]
    ids = {r.headers["x-sandseg-replica"] for r in answers}
    assert len(ids) == 1
    assert REPLICA.fullmatch(ids.pop())


def test_the_model_reports_one_replica(client) -> None:
    replicas = client.get("/api/v1/model").json()["replicas"]
    assert replicas["count"] == 1
    assert replicas["autoscale"] is None
    assert replicas["adapter"] is None  # one process: its own device, nothing chosen
    assert replicas["this"] == client.get("/healthz").headers["x-sandseg-replica"]


def test_a_given_replica_id_is_the_header_without_an_engine(bundle) -> None:
    app = create_app(bundle, hosts={"testserver"}, replica=ReplicaInfo("r-7", 2))
    response = TestClient(app).get("/")
    assert response.status_code == 200
    assert response.headers["x-sandseg-replica"] == "r-7"


def test_autoscaled_replicas_describe_their_range() -> None:
    info = ReplicaInfo("r-1", None, (1, 4))
    assert info.describe() == {
        "this": "r-1",
        "count": None,
        "autoscale": {"min": 1, "max": 4},
        "adapter": None,
    }
