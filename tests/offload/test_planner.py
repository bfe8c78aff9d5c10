"""The planner's formulas and choices, checked against hand computations with round numbers.

The server runs each stage 10x faster than the (slow) client below; the expected times are
written out term by term from the formulas in `sandseg.offload.planner`.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest

from sandseg.offload.planner import (
    DEFAULT_NETWORK,
    STAGES,
    Estimate,
    Network,
    Planner,
    Profile,
    Sizes,
    candidate_modes,
    choose,
    estimate,
    estimate_all,
    split_stage,
)

# Server: encoder 0.4 s (0.02 + 0.04 + 0.08 + 0.2 + 0.04 + 0.02), preprocess and decode 10 ms.
SERVER = Profile(
    stage_seconds=dict(zip(STAGES, [0.02, 0.04, 0.08, 0.2, 0.04, 0.02], strict=True)),
    preprocess_seconds=0.01,
    decode_seconds=0.01,
)
# Client: every part 10x the server's; encoder 4.0 s.
CLIENT = Profile(
    stage_seconds=dict(zip(STAGES, [0.2, 0.4, 0.8, 2.0, 0.4, 0.2], strict=True)),
    preprocess_seconds=0.1,
    decode_seconds=0.1,
)
SIZES = Sizes(
    image_bytes=500_000,
    boundary_bytes=dict(
        zip(STAGES[:-1], [2_000_000, 1_000_000, 300_000, 600_000, 600_000], strict=True)
    ),
    embeddings_bytes=2_000_000,
    prompt_bytes=1_000,
    mask_bytes=100_000,
)
NET = Network(rtt_s=0.1, up_bytes_per_s=1e6, down_bytes_per_s=2e6)
FAST = Network(rtt_s=0.02, up_bytes_per_s=100e6, down_bytes_per_s=100e6)
SLOW_3G = Network(rtt_s=0.15, up_bytes_per_s=0.75e6 / 8, down_bytes_per_s=1.6e6 / 8)

ALL_MODES = [
    "client",
    "split:patch_embed",
    "split:layers.0",
    "split:layers.1",
    "split:layers.2",
    "split:layers.3",
    "split:image",
    "server",
]


def by_mode(estimates: list[Estimate]) -> dict[str, Estimate]:
    return {e.mode: e for e in estimates}


def fake(mode: str, first_mask_s: float, server_s: float) -> Estimate:
    return Estimate(mode, first_mask_s, 0.1, 0.0, server_s, 0.0, 0, 0, 0)


# -- formulas ------------------------------------------------------------------------------


def test_client_formula():
    e = estimate("client", CLIENT, SERVER, NET, SIZES)
    assert e.first_mask_s == pytest.approx(0.1 + 4.0 + 0.1)
    assert e.click_s == pytest.approx(0.1)
    assert e.client_s == pytest.approx(4.2)
    assert (e.server_s, e.server_click_s, e.upload_bytes, e.download_bytes) == (0, 0, 0, 0)
    assert e.round_trips == 0


def test_split_formula():
    e = estimate("split:layers.1", CLIENT, SERVER, NET, SIZES)
    client_prefix = 0.1 + (0.2 + 0.4 + 0.8)
    server_rest = 0.2 + 0.04 + 0.02
    # rtt + 300 kB up at 1 MB/s + 2 MB of embeddings down at 2 MB/s
    wire = 0.1 + 0.3 + 1.0
    assert e.first_mask_s == pytest.approx(client_prefix + wire + server_rest + 0.1)
    assert e.first_mask_s == pytest.approx(3.26)
    assert e.click_s == pytest.approx(0.1)
    assert e.client_s == pytest.approx(client_prefix + 0.1)
    assert e.server_s == pytest.approx(server_rest)
    assert e.server_click_s == 0
    assert (e.upload_bytes, e.download_bytes, e.round_trips) == (300_000, 2_000_000, 1)


def test_split_image_formula():
    e = estimate("split:image", CLIENT, SERVER, NET, SIZES)
    # rtt + 500 kB image up + server preprocess and encoder + embeddings down + client decode
    assert e.first_mask_s == pytest.approx(0.1 + 0.5 + 0.01 + 0.4 + 1.0 + 0.1)
    assert e.click_s == pytest.approx(0.1)
    assert e.client_s == pytest.approx(0.1)
    assert e.server_s == pytest.approx(0.41)
    assert (e.upload_bytes, e.download_bytes, e.round_trips) == (500_000, 2_000_000, 1)


def test_server_formula():
    e = estimate("server", CLIENT, SERVER, NET, SIZES)
    # one click: rtt + 1 kB prompt up + server decode + 100 kB masks down
    click = 0.1 + 0.001 + 0.01 + 0.05
    assert e.click_s == pytest.approx(click)
    assert e.first_mask_s == pytest.approx(0.1 + 0.5 + 0.01 + 0.4 + click)
    assert e.client_s == 0
    assert e.server_s == pytest.approx(0.01 + 0.4 + 0.01)
    assert e.server_click_s == pytest.approx(0.01)
    assert (e.upload_bytes, e.download_bytes, e.round_trips) == (501_000, 100_000, 2)


def test_candidate_order():
    assert candidate_modes(True) == ALL_MODES
    assert candidate_modes(False) == ["server"]
    assert [e.mode for e in estimate_all(CLIENT, SERVER, NET, SIZES)] == ALL_MODES


def test_without_client_only_server():
    assert [e.mode for e in estimate_all(None, SERVER, NET, SIZES)] == ["server"]
    with pytest.raises(ValueError, match="'client'"):
        estimate("client", None, SERVER, NET, SIZES)
    with pytest.raises(ValueError, match=re.escape("'split:layers.1'")):
        estimate("split:layers.1", None, SERVER, NET, SIZES)


def test_split_stage_is_the_one_parser_of_split_modes():
    assert split_stage("split:layers.1") == "layers.1"
    assert split_stage("split:patch_embed") == "patch_embed"
    for mode in ("split:image", "split:neck", "client", "server", "auto", "layers.1"):
        assert split_stage(mode) is None, mode


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="'split:neck'"):
        estimate("split:neck", CLIENT, SERVER, NET, SIZES)


def test_incomplete_profile_is_refused():
    with pytest.raises(ValueError, match="neck"):
        Profile({"patch_embed": 1.0}, 0.1, 0.1)


# -- latency choices -----------------------------------------------------------------------


def test_fast_network_slow_client_picks_server():
    plan = choose(estimate_all(CLIENT, SERVER, FAST, SIZES))
    server = 0.02 + 0.005 + 0.41 + (0.02 + 0.00001 + 0.01 + 0.001)
    # split:image pays the slow client's 0.1 s decode instead of a second round trip
    split_image = 0.02 + 0.005 + 0.41 + 0.02 + 0.1
    assert plan.choice.mode == "server"
    assert plan.choice.first_mask_s == pytest.approx(server)
    assert by_mode(plan.estimates)["split:image"].first_mask_s == pytest.approx(split_image)
    assert "fastest of 8 modes; next best split:image at 0.6 s" in plan.reason


def test_slow_network_decent_client_picks_client():
    plan = choose(estimate_all(CLIENT, SERVER, SLOW_3G, SIZES))
    # Every remote mode uploads the image (server mode) or downloads the embeddings.
    image_up = 500_000 / (0.75e6 / 8)
    embeddings_down = 2_000_000 / (1.6e6 / 8)
    assert min(image_up, embeddings_down) > 4.2
    assert plan.choice.mode == "client"
    assert plan.choice.first_mask_s == pytest.approx(4.2)


def test_small_boundary_makes_a_middle_split_win():
    # A 2 MB image on a slow uplink (0.5 MB/s) with a fast downlink (20 MB/s).
    net = Network(rtt_s=0.05, up_bytes_per_s=0.5e6, down_bytes_per_s=20e6)
    sizes = dataclasses.replace(SIZES, image_bytes=2_000_000)
    estimates = by_mode(estimate_all(CLIENT, SERVER, net, sizes))
    hand = {
        "split:layers.1": 0.1 + 1.4 + 0.05 + 0.6 + 0.26 + 0.1 + 0.1,
        "split:layers.0": 0.1 + 0.6 + 0.05 + 2.0 + 0.34 + 0.1 + 0.1,
        "split:layers.2": 0.1 + 3.4 + 0.05 + 1.2 + 0.06 + 0.1 + 0.1,
        "client": 4.2,
        "server": 0.05 + 4.0 + 0.41 + (0.05 + 0.002 + 0.01 + 0.005),
        "split:image": 0.05 + 4.0 + 0.41 + 0.1 + 0.1,
    }
    for mode, seconds in hand.items():
        assert estimates[mode].first_mask_s == pytest.approx(seconds), mode
    assert choose(list(estimates.values())).choice.mode == "split:layers.1"


def test_latency_ties_go_to_less_server_then_candidate_order():
    plan = choose([fake("server", 1.0, 0.5), fake("split:image", 1.0, 0.4)])
    assert plan.choice.mode == "split:image"
    plan = choose([fake("server", 1.0, 0.4), fake("split:image", 1.0, 0.4)])
    assert plan.choice.mode == "split:image"


def test_choose_refuses_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        choose([])
    with pytest.raises(ValueError, match="'cost'"):
        choose([fake("server", 1.0, 0.4)], objective="cost")


# -- server objective ----------------------------------------------------------------------


def test_server_objective_picks_least_server_compute_within_budget():
    estimates = estimate_all(CLIENT, SERVER, NET, SIZES)
    # The client (4.2 s, no server compute) fits a 5 s budget.
    assert choose(estimates, "server", 5.0).choice.mode == "client"
    # Within 3.5 s: split:layers.0 (3.24 s, server 0.34 s), split:layers.1 (3.26 s, 0.26 s),
    # split:image (2.11 s, 0.41 s) and server (1.171 s, 0.42 s).
    plan = choose(estimates, "server", 3.5)
    assert plan.choice.mode == "split:layers.1"
    assert plan.choice.server_s == pytest.approx(0.26)
    assert plan.objective == "server"
    assert plan.reason.endswith("least server compute within the 3.5 s budget")


def test_server_objective_too_tight_budget_falls_back_to_fastest():
    plan = choose(estimate_all(CLIENT, SERVER, NET, SIZES), "server", 1.0)
    assert plan.choice.mode == "server"
    assert "no mode meets the 1.0 s budget" in plan.reason


@pytest.mark.parametrize("budget", [None, 0.0, -1.0])
def test_server_objective_needs_a_budget(budget):
    with pytest.raises(ValueError, match="budget"):
        choose(estimate_all(CLIENT, SERVER, NET, SIZES), "server", budget)


# -- wording -------------------------------------------------------------------------------


def test_describe():
    def say(mode: str) -> str:
        return estimate(mode, CLIENT, SERVER, NET, SIZES).describe()

    assert say("client") == "client: 4.2 s on this device -> 4.2 s to the first mask"
    assert say("split:layers.1") == (
        "split after layers.1: client 1.6 s, upload 0.3 MB, server 0.3 s, download 2.0 MB"
        " -> 3.3 s to the first mask"
    )
    assert say("split:image") == (
        "split:image: upload 0.5 MB, server 0.4 s, download 2.0 MB, client 0.1 s"
        " -> 2.1 s to the first mask"
    )
    assert say("server") == (
        "server: upload 0.5 MB, server 0.4 s, download 0.1 MB -> 1.2 s to the first mask"
    )


def test_describe_uses_ms_below_a_tenth_of_a_second():
    quick = Estimate("client", 0.04, 0.01, 0.04, 0.0, 0.0, 0, 0, 0)
    assert quick.describe() == "client: 40 ms on this device -> 40 ms to the first mask"


def test_reason_starts_with_the_choice():
    plan = choose(estimate_all(CLIENT, SERVER, NET, SIZES))
    assert plan.reason.startswith(plan.choice.describe() + "; fastest of 8 modes")


# -- Planner -------------------------------------------------------------------------------


def planner(smoothing: float = 0.5, **options: Any) -> Planner:
    p = Planner(smoothing=smoothing, **options)
    p.set_server_profile(SERVER)
    return p


def observe_network(p: Planner, net: Network) -> None:
    """Requests as they would go over `net`: a small one (the RTT), then a big upload and a
    big download (the bandwidths)."""
    p.observe_request(1_000, 1_000, elapsed_s=net.rtt_s, server_s=0.0)
    big = 10_000_000
    p.observe_request(big, 0, elapsed_s=net.rtt_s + big / net.up_bytes_per_s, server_s=0.0)
    p.observe_request(0, big, elapsed_s=net.rtt_s + big / net.down_bytes_per_s, server_s=0.0)


def test_planner_replans_when_the_network_slows_down():
    p = planner(smoothing=1.0, network=FAST)
    p.set_client_speed_ratio(10.0)  # unmeasured client = CLIENT
    assert p.plan(SIZES).choice.mode == "server"
    observe_network(p, SLOW_3G)
    assert p.network.rtt_s == pytest.approx(SLOW_3G.rtt_s)
    assert p.network.up_bytes_per_s == pytest.approx(SLOW_3G.up_bytes_per_s)
    assert p.network.down_bytes_per_s == pytest.approx(SLOW_3G.down_bytes_per_s)
    plan = p.plan(SIZES)
    assert p.last_plan is plan and plan.choice.mode == "client"
    assert plan.choice.first_mask_s == pytest.approx(4.2)


def test_planner_replans_when_the_server_gets_busy():
    p = planner(network=FAST)
    p.set_client_speed_ratio(10.0)  # unmeasured client = CLIENT
    assert p.plan(SIZES).choice.mode == "server"
    # Requests now take 20x what the start-up profile says (queueing behind other users).
    p.observe_server(expected_s=0.41, observed_s=8.2)
    assert p.server_load == pytest.approx(20.0)
    plan = p.plan(SIZES)
    assert plan.choice.mode == "client"
    assert plan.choice.first_mask_s == pytest.approx(4.2)
    # split after layers.3 (the best remote mode left): client 3.9 s, neck 20 x 0.02 s on the
    # server, plus the round trip, the upload, the download and the local decode.
    split = 3.9 + 0.02 + 600_000 / 100e6 + 20 * 0.02 + 2_000_000 / 100e6 + 0.1
    assert by_mode(plan.estimates)["split:layers.3"].first_mask_s == pytest.approx(split)
    server = 0.02 + 0.005 + 20 * 0.41 + (0.02 + 0.00001 + 20 * 0.01 + 0.001)
    assert by_mode(plan.estimates)["server"].first_mask_s == pytest.approx(server)


def test_planner_without_server_profile_refuses_to_plan():
    with pytest.raises(RuntimeError, match="set_server_profile"):
        Planner().plan(SIZES)


def test_planner_without_webgpu_plans_server_only():
    p = planner()
    p.client_available = False
    assert p.client_profile() is None
    plan = p.plan(SIZES)
    assert [e.mode for e in plan.estimates] == ["server"]
    assert plan.reason.endswith("the only mode available")


def test_planner_objective_checks():
    with pytest.raises(ValueError, match="budget"):
        Planner(objective="server")
    p = planner(objective="server", latency_budget_s=3.5, network=NET)
    p.set_client_speed_ratio(10.0)
    assert p.plan(SIZES).choice.mode == "split:layers.1"


def test_network_defaults():
    assert Planner().network == DEFAULT_NETWORK == Network(0.05, 10e6, 10e6)


def test_small_requests_estimate_rtt():
    p = Planner()
    p.observe_request(up_bytes=1_000, down_bytes=2_000, elapsed_s=0.25, server_s=0.05)
    assert p.network.rtt_s == pytest.approx(0.2)
    p.observe_request(up_bytes=1_000, down_bytes=2_000, elapsed_s=0.15, server_s=0.05)
    assert p.network.rtt_s == pytest.approx(0.2 + 0.5 * (0.1 - 0.2))
    # Bandwidths were never measured.
    assert p.network.up_bytes_per_s == DEFAULT_NETWORK.up_bytes_per_s
    assert p.network.down_bytes_per_s == DEFAULT_NETWORK.down_bytes_per_s


def test_large_requests_estimate_bandwidth_past_the_rtt():
    p = Planner()
    p.observe_request(1_000, 1_000, elapsed_s=0.2, server_s=0.0)  # rtt 0.2 s
    # 1 MB up: 1.5 s elapsed - 0.3 s server - 0.2 s rtt = 1.0 s -> 1 MB/s
    p.observe_request(1_000_000, 1_000, elapsed_s=1.5, server_s=0.3)
    assert p.network.up_bytes_per_s == pytest.approx(1e6)
    # 2 MB down: 0.7 - 0.1 - 0.2 = 0.4 s -> 5 MB/s
    p.observe_request(1_000, 2_000_000, elapsed_s=0.7, server_s=0.1)
    assert p.network.down_bytes_per_s == pytest.approx(5e6)
    assert p.network.rtt_s == pytest.approx(0.2)


def test_large_upload_without_rtt_estimate_uses_zero_rtt():
    p = Planner()
    p.observe_request(1_000_000, 0, elapsed_s=2.0, server_s=0.0)
    assert p.network.up_bytes_per_s == pytest.approx(0.5e6)


def test_a_first_network_estimate_is_refined_by_observations():
    p = Planner(network=NET)
    assert p.network == NET
    p.observe_request(1_000, 1_000, elapsed_s=0.3, server_s=0.0)
    assert p.network.rtt_s == pytest.approx(0.1 + 0.5 * (0.3 - 0.1))


def test_observe_client_ewma():
    p = planner(smoothing=0.25)
    p.observe_client("decode", 0.4)
    first = p.client_profile()
    assert first is not None
    assert first.decode_seconds == pytest.approx(0.4)
    p.observe_client("decode", 0.2)
    second = p.client_profile()
    assert second is not None
    assert second.decode_seconds == pytest.approx(0.4 + 0.25 * (0.2 - 0.4))
    with pytest.raises(ValueError, match="'encoder'"):
        p.observe_client("encoder", 1.0)


def test_unmeasured_client_parts_scale_by_the_median_ratio():
    p = planner()
    p.set_client_speed_ratio(3.0)  # measurements take over from the probe
    p.observe_client("patch_embed", 0.04)  # 2x the server's 0.02
    p.observe_client("layers.0", 0.16)  # 4x 0.04
    p.observe_client("preprocess", 0.1)  # 10x 0.01
    client = p.client_profile()
    assert client is not None
    assert client.stage_seconds["patch_embed"] == pytest.approx(0.04)
    assert client.stage_seconds["layers.0"] == pytest.approx(0.16)
    assert client.preprocess_seconds == pytest.approx(0.1)
    # median(2, 4, 10) = 4
    assert client.stage_seconds["layers.2"] == pytest.approx(4 * 0.2)
    assert client.decode_seconds == pytest.approx(4 * 0.01)


def test_unmeasured_client_parts_scale_by_the_probe_ratio_else_one():
    p = planner()
    assert p.client_profile() == SERVER
    p.set_client_speed_ratio(3.0)
    client = p.client_profile()
    assert client is not None
    assert client.stage_seconds["layers.1"] == pytest.approx(3 * 0.08)
    assert client.decode_seconds == pytest.approx(3 * 0.01)
