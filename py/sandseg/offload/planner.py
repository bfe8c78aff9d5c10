"""The offload planner: predicts each mode's latency and server load, and picks one.

Modes (Neurosurgeon-style split offload of the image encoder):
- "client": preprocess, encoder and every click's decode run locally.
- "split:<stage>": the client runs preprocess and the stages up to <stage>, uploads the
  boundary tensor; the server runs the rest and returns the embeddings; the client decodes.
- "split:image": the client uploads the image file, the server preprocesses and encodes.
- "server": the client uploads the image, then sends each click to the server for decoding.

Times are seconds, sizes bytes on the wire. Standard library only: this runs in Pyodide.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from ..weights.layout import ENCODER_STAGES

STAGES = ENCODER_STAGES
# At or below this size a request's time is all round trip (headers, latency), no bandwidth.
SMALL_REQUEST_BYTES = 16 * 1024
OBJECTIVES = ("latency", "server")

# The stages a split can cut after (the last one is no split: that is client mode).
SPLIT_STAGES = STAGES[:-1]
# Every mode, "auto" first, then the candidates from the most local to the most remote.
MODES = ("auto", "client", *(f"split:{stage}" for stage in SPLIT_STAGES), "split:image", "server")

_PARTS = ("preprocess", *STAGES, "decode")
_MODES = MODES[1:]
_MIN_SECONDS = 1e-6


@dataclass(frozen=True)
class Network:
    rtt_s: float
    up_bytes_per_s: float
    down_bytes_per_s: float

    def __post_init__(self) -> None:
        if self.rtt_s < 0 or self.up_bytes_per_s <= 0 or self.down_bytes_per_s <= 0:
            raise ValueError(f"a network needs rtt >= 0 and bandwidths > 0, got {self}")


DEFAULT_NETWORK = Network(rtt_s=0.05, up_bytes_per_s=10e6, down_bytes_per_s=10e6)


@dataclass(frozen=True)
class Profile:
    """Measured seconds on one side; decode_seconds is one click (prompt encoder, mask
    decoder, postprocess)."""

    stage_seconds: dict[str, float]
    preprocess_seconds: float
    decode_seconds: float

    def __post_init__(self) -> None:
        missing = [stage for stage in STAGES if stage not in self.stage_seconds]
        if missing:
            raise ValueError(f"a profile needs every stage's seconds; missing {missing}")


@dataclass(frozen=True)
class Sizes:
    """Bytes on the wire; boundary_bytes is the tensor after each stage except "neck", as sent;
    prompt_bytes and mask_bytes are one click's request and response in server mode."""

    image_bytes: int
    boundary_bytes: dict[str, int]
    embeddings_bytes: int
    prompt_bytes: int
    mask_bytes: int

    def __post_init__(self) -> None:
        missing = [stage for stage in SPLIT_STAGES if stage not in self.boundary_bytes]
        if missing:
            raise ValueError(f"sizes need the boundary bytes after every split; missing {missing}")


@dataclass(frozen=True)
class Estimate:
    mode: str
    first_mask_s: float
    click_s: float
    client_s: float
    server_s: float
    server_click_s: float
    upload_bytes: int
    download_bytes: int
    round_trips: int

    def describe(self) -> str:
        """One line for the page, e.g. "split after layers.1: client 0.8 s, upload 1.2 MB,
        server 0.5 s, download 2.1 MB -> 2.9 s to the first mask"."""
        total = f"-> {_seconds(self.first_mask_s)} to the first mask"
        if self.mode == "client":
            return f"client: {_seconds(self.client_s)} on this device {total}"
        client = f"client {_seconds(self.client_s)}"
        remote = [
            f"upload {_megabytes(self.upload_bytes)}",
            f"server {_seconds(self.server_s)}",
            f"download {_megabytes(self.download_bytes)}",
        ]
        # Parts in the order they happen: a split's client work comes before the upload,
        # split:image only decodes after the download, server mode has no client work.
        if self.mode == "server":
            parts = remote
        elif self.mode == "split:image":
            parts = [*remote, client]
        else:
            parts = [client, *remote]
        return f"{_label(self.mode)}: {', '.join(parts)} {total}"


@dataclass(frozen=True)
class Plan:
    choice: Estimate
    estimates: list[Estimate]
    objective: str
    reason: str


def split_stage(mode: str) -> str | None:
    """The last encoder stage this device runs in a "split:<stage>" mode; None in any other
    mode ("split:image" included: the server runs the whole encoder)."""
    stage = mode.removeprefix("split:")
    return stage if stage != mode and stage in SPLIT_STAGES else None


def needs(mode: str) -> tuple[bool, bool]:
    """(the model on this device, a server): what choosing `mode` requires. auto works
    with the server alone; only client mode works without one."""
    return mode not in ("auto", "server"), mode != "client"


def candidate_modes(client_available: bool) -> list[str]:
    """Every mode in candidate order; only "server" when the client cannot run the model."""
    return list(_MODES) if client_available else ["server"]


def estimate(
    mode: str, client: Profile | None, server: Profile, network: Network, sizes: Sizes
) -> Estimate:
    """Predict one mode; client is None when the client cannot run the model (no WebGPU)."""
    if mode not in _MODES:
        raise ValueError(f"unknown offload mode {mode!r}; known modes: {', '.join(_MODES)}")
    if mode == "server":
        return _server_estimate(server, network, sizes)
    if client is None:
        raise ValueError(f"mode {mode!r} runs the model on the client, which cannot run it")
    if mode == "client":
        return _client_estimate(client)
    if mode == "split:image":
        return _image_estimate(client, server, network, sizes)
    return _split_estimate(mode, client, server, network, sizes)


def estimate_all(
    client: Profile | None, server: Profile, network: Network, sizes: Sizes
) -> list[Estimate]:
    """Estimates of every candidate mode, in candidate order."""
    modes = candidate_modes(client is not None)
    return [estimate(mode, client, server, network, sizes) for mode in modes]


def choose(
    estimates: list[Estimate], objective: str = "latency", latency_budget_s: float | None = None
) -> Plan:
    """Pick a mode. "latency": the fastest first mask. "server": the least server compute
    among modes within latency_budget_s, or the fastest when none is."""
    _check_objective(objective, latency_budget_s)
    if not estimates:
        raise ValueError("choose() needs at least one estimate")
    by_latency = sorted(estimates, key=_latency_key)
    if objective == "latency":
        choice, why = by_latency[0], _fastest_reason(by_latency)
    else:
        choice, why = _least_server(by_latency, _required_budget(latency_budget_s))
    return Plan(choice, list(estimates), objective, f"{choice.describe()}; {why}")


class Planner:
    """Learns client times and the network from measurements and re-plans with them.

    Unmeasured client parts are the server's times scaled by the client/server ratio: the
    median over measured parts, else the probe's ratio, else 1. Unmeasured network figures
    come from DEFAULT_NETWORK."""

    def __init__(
        self,
        objective: str = "latency",
        latency_budget_s: float | None = None,
        smoothing: float = 0.5,
        network: Network | None = None,
    ) -> None:
        """objective "latency": the fastest first mask; "server": the least server compute
        whose first mask is within latency_budget_s. network: a first estimate that real
        requests then refine (default: learned from requests, DEFAULT_NETWORK until then)."""
        _check_objective(objective, latency_budget_s)
        if not 0 < smoothing <= 1:
            raise ValueError(f"smoothing must be in (0, 1], got {smoothing}")
        self.objective = objective
        self.latency_budget_s = latency_budget_s
        self.smoothing = smoothing
        self.server_profile: Profile | None = None
        self.client_available = True
        self.last_plan: Plan | None = None
        self._client_times: dict[str, float] = {}
        self._probe_ratio: float | None = None
        self._rtt_s = network.rtt_s if network else None
        self._up_bytes_per_s = network.up_bytes_per_s if network else None
        self._down_bytes_per_s = network.down_bytes_per_s if network else None
        self._server_load: float | None = None

    def set_server_profile(self, profile: Profile) -> None:
        self.server_profile = profile

    def observe_client(self, part: str, seconds: float) -> None:
        """part: "preprocess", a stage name or "decode"."""
        if part not in _PARTS:
            raise ValueError(f"unknown client part {part!r}; known parts: {', '.join(_PARTS)}")
        self._client_times[part] = self._smooth(self._client_times.get(part), seconds)

    def set_client_speed_ratio(self, ratio: float) -> None:
        """Client seconds / server seconds, from a probe; used until parts are measured."""
        if ratio <= 0:
            raise ValueError(f"the client speed ratio must be > 0, got {ratio}")
        self._probe_ratio = ratio

    def observe_request(
        self, up_bytes: int, down_bytes: int, elapsed_s: float, server_s: float
    ) -> None:
        """Learn the network from a real request: elapsed_s seen by the client, server_s the
        compute the server reported for it."""
        transfer_s = max(elapsed_s - server_s, _MIN_SECONDS)
        if up_bytes + down_bytes <= SMALL_REQUEST_BYTES:
            self._rtt_s = self._smooth(self._rtt_s, transfer_s)
            return
        # The time past one round trip goes to the bigger body; the smaller one rides along.
        seconds = max(transfer_s - (self._rtt_s or 0.0), _MIN_SECONDS)
        if up_bytes >= down_bytes:
            self._up_bytes_per_s = self._smooth(self._up_bytes_per_s, up_bytes / seconds)
        else:
            self._down_bytes_per_s = self._smooth(self._down_bytes_per_s, down_bytes / seconds)

    def observe_server(self, expected_s: float, observed_s: float) -> None:
        """Learn how busy the server is: `observed_s` (its queue + compute for a request, from
        Server-Timing) against `expected_s` (what its start-up profile says that work takes).
        A busy server's times are scaled up in the next plans."""
        if expected_s > 0:
            self._server_load = self._smooth(self._server_load, observed_s / expected_s)

    @property
    def server_load(self) -> float:
        """Observed / profiled server seconds (1.0 until observed)."""
        return _or(self._server_load, 1.0)

    @property
    def network(self) -> Network:
        return Network(
            rtt_s=_or(self._rtt_s, DEFAULT_NETWORK.rtt_s),
            up_bytes_per_s=_or(self._up_bytes_per_s, DEFAULT_NETWORK.up_bytes_per_s),
            down_bytes_per_s=_or(self._down_bytes_per_s, DEFAULT_NETWORK.down_bytes_per_s),
        )

    def client_profile(self) -> Profile | None:
        """The client's times as best known; None when the client cannot run the model."""
        if not self.client_available:
            return None
        server = self.server_profile
        if server is None:
            if len(self._client_times) < len(_PARTS):
                raise RuntimeError(
                    "client parts are unmeasured and there is no server profile to scale from: "
                    "call set_server_profile() first"
                )
            return _profile_from(self._client_times)
        ratio = self._client_ratio(server)
        scaled = {part: ratio * _part_seconds(server, part) for part in _PARTS}
        return _profile_from(scaled | self._client_times)

    def plan(self, sizes: Sizes) -> Plan:
        """Estimate every candidate mode with what is known now and choose; kept as last_plan."""
        if self.server_profile is None:
            raise RuntimeError(
                "cannot plan before the server's profile is known: call "
                "set_server_profile() with the server's description"
            )
        client = self.client_profile()
        server = _scaled(self.server_profile, self.server_load)
        estimates = estimate_all(client, server, self.network, sizes)
        self.last_plan = choose(estimates, self.objective, self.latency_budget_s)
        return self.last_plan

    def _smooth(self, old: float | None, sample: float) -> float:
        return sample if old is None else old + self.smoothing * (sample - old)

    def _client_ratio(self, server: Profile) -> float:
        ratios = [
            seconds / _part_seconds(server, part)
            for part, seconds in self._client_times.items()
            if _part_seconds(server, part) > 0
        ]
        if ratios:
            return statistics.median(ratios)
        return _or(self._probe_ratio, 1.0)


# -- one function per mode: the formulas ---------------------------------------------------


def _client_estimate(client: Profile) -> Estimate:
    total = client.preprocess_seconds + _stages_seconds(client) + client.decode_seconds
    return Estimate(
        mode="client",
        first_mask_s=total,
        click_s=client.decode_seconds,
        client_s=total,
        server_s=0.0,
        server_click_s=0.0,
        upload_bytes=0,
        download_bytes=0,
        round_trips=0,
    )


def _split_estimate(
    mode: str, client: Profile, server: Profile, network: Network, sizes: Sizes
) -> Estimate:
    stage = split_stage(mode)
    assert stage is not None
    cut = STAGES.index(stage) + 1
    client_s = client.preprocess_seconds + _stages_seconds(client, stop=cut) + client.decode_seconds
    server_s = _stages_seconds(server, start=cut)
    upload = sizes.boundary_bytes[stage]
    wire_s = _request_seconds(network, upload, sizes.embeddings_bytes)
    return Estimate(
        mode=mode,
        first_mask_s=client_s + wire_s + server_s,
        click_s=client.decode_seconds,
        client_s=client_s,
        server_s=server_s,
        server_click_s=0.0,
        upload_bytes=upload,
        download_bytes=sizes.embeddings_bytes,
        round_trips=1,
    )


def _image_estimate(client: Profile, server: Profile, network: Network, sizes: Sizes) -> Estimate:
    server_s = server.preprocess_seconds + _stages_seconds(server)
    wire_s = _request_seconds(network, sizes.image_bytes, sizes.embeddings_bytes)
    return Estimate(
        mode="split:image",
        first_mask_s=wire_s + server_s + client.decode_seconds,
        click_s=client.decode_seconds,
        client_s=client.decode_seconds,
        server_s=server_s,
        server_click_s=0.0,
        upload_bytes=sizes.image_bytes,
        download_bytes=sizes.embeddings_bytes,
        round_trips=1,
    )


def _server_estimate(server: Profile, network: Network, sizes: Sizes) -> Estimate:
    encode_s = server.preprocess_seconds + _stages_seconds(server)
    # The image upload's JSON reply is a few bytes: its transfer time is negligible.
    upload_s = _request_seconds(network, sizes.image_bytes, 0)
    click_s = _request_seconds(network, sizes.prompt_bytes, sizes.mask_bytes)
    click_s += server.decode_seconds
    return Estimate(
        mode="server",
        first_mask_s=upload_s + encode_s + click_s,
        click_s=click_s,
        client_s=0.0,
        server_s=encode_s + server.decode_seconds,
        server_click_s=server.decode_seconds,
        upload_bytes=sizes.image_bytes + sizes.prompt_bytes,
        download_bytes=sizes.mask_bytes,
        round_trips=2,
    )


def _request_seconds(network: Network, up_bytes: int, down_bytes: int) -> float:
    return network.rtt_s + up_bytes / network.up_bytes_per_s + down_bytes / network.down_bytes_per_s


def _stages_seconds(profile: Profile, start: int = 0, stop: int = len(STAGES)) -> float:
    return sum(profile.stage_seconds[stage] for stage in STAGES[start:stop])


def _part_seconds(profile: Profile, part: str) -> float:
    if part == "preprocess":
        return profile.preprocess_seconds
    if part == "decode":
        return profile.decode_seconds
    return profile.stage_seconds[part]


def _scaled(profile: Profile, factor: float) -> Profile:
    return Profile(
        stage_seconds={stage: factor * s for stage, s in profile.stage_seconds.items()},
        preprocess_seconds=factor * profile.preprocess_seconds,
        decode_seconds=factor * profile.decode_seconds,
    )


def _profile_from(times: dict[str, float]) -> Profile:
    stages = {stage: times[stage] for stage in STAGES}
    return Profile(stages, times["preprocess"], times["decode"])


# -- choosing ------------------------------------------------------------------------------


def _check_objective(objective: str, latency_budget_s: float | None) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; known: {', '.join(OBJECTIVES)}")
    if objective == "server":
        _required_budget(latency_budget_s)


def _required_budget(latency_budget_s: float | None) -> float:
    if latency_budget_s is None or latency_budget_s <= 0:
        raise ValueError(
            f'objective "server" needs a latency budget > 0 seconds, got {latency_budget_s}'
        )
    return latency_budget_s


def _latency_key(estimate: Estimate) -> tuple[float, float, int]:
    return (estimate.first_mask_s, estimate.server_s, _MODES.index(estimate.mode))


def _fastest_reason(by_latency: list[Estimate]) -> str:
    if len(by_latency) == 1:
        return "the only mode available"
    runner_up = by_latency[1]
    return (
        f"fastest of {len(by_latency)} modes; "
        f"next best {runner_up.mode} at {_seconds(runner_up.first_mask_s)}"
    )


def _least_server(by_latency: list[Estimate], budget_s: float) -> tuple[Estimate, str]:
    budget = _seconds(budget_s)
    fits = [e for e in by_latency if e.first_mask_s <= budget_s]
    if not fits:
        return by_latency[0], f"no mode meets the {budget} budget, so the fastest"
    choice = min(fits, key=lambda e: (e.server_s, *_latency_key(e)))
    return choice, f"least server compute within the {budget} budget"


# -- wording -------------------------------------------------------------------------------


def _label(mode: str) -> str:
    stage = split_stage(mode)
    return f"split after {stage}" if stage else mode


def _seconds(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 0.1 else f"{seconds:.1f} s"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
