"""SV-7: the offload API fuzzed from its own OpenAPI document with schemathesis, on the
session's engine: in-process (ASGI), then over real sockets (uvicorn on 127.0.0.1).

Every operation the document declares gets schema-driven requests (valid and invalid path
and query values, missing and wrong content types, the methods it does not declare) with
bodies from the generators below: safetensors that look right but have the wrong names,
dtypes, shapes or sizes; prompts with points off the image, too many points, bad labels
and metadata; broken images. Checks: no 5xx but 503 (overload), every error a clean JSON
{"error"} (SV-4), statuses and content types as the document declares them; afterwards the
server still answers its probes, a stage and a predict.

CI runs a bounded, seeded campaign (60 examples per operation, ~360 requests per target,
under a minute here). A longer one, with a fresh seed each run:

    SANDSEG_API_FUZZ_EXAMPLES=1000 SANDSEG_API_FUZZ_SEED=random XDG_RUNTIME_DIR=/tmp \\
        .venv/bin/python -m pytest tests/server/test_api_fuzz.py -q -s

A full image encode costs seconds here, so the image bodies that decode are a fixed few
(each encoded once, then answered from the image cache) and every other image body is
broken in a way the decoder refuses before any model work. Only the neck, the cheapest
stage, is ever sent a tensor of the shape it takes.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import math
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import strategies as st
from PIL import Image
from schemathesis.core.failures import AcceptedNegativeData, Failure
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.testclient import TestClient

from sandseg.inputs import Prompt
from sandseg.offload import messages
from sandseg.offload.messages import MAX_PROMPT_POINTS
from sandseg.predictor import MAX_IMAGE_PIXELS, InputError
from sandseg.server.api import ApiSettings
from sandseg.server.app import create_app
from sandseg.server.everything import parse_parameters
from sandseg.server.images import decode_upload
from sandseg.server.openapi import openapi_document
from sandseg.server.thread import ServerThread
from tests.conftest import CONFORMANCE
from tests.server.test_api import LEAKS

OCTETS = "application/octet-stream"
# The encoder's stages and the (H, W, C) tensor each takes, as GET /api/v1/model lists them.
STAGES = {
    "patch_embed": (1024, 1024, 3),
    "layers.0": (256, 256, 64),
    "layers.1": (128, 128, 128),
    "layers.2": (64, 64, 160),
    "layers.3": (64, 64, 320),
    "neck": (64, 64, 320),
}
PHOTO = CONFORMANCE.parent / "images" / "picture1.jpg"
EXAMPLES = int(os.environ.get("SANDSEG_API_FUZZ_EXAMPLES", "60"))
SEED = os.environ.get("SANDSEG_API_FUZZ_SEED", "20240607")

# The document says what a body is (binary safetensors or an image) but not what is inside,
# so a body valid for the schema is no promise of a 2xx: positive_data_acceptance cannot
# apply. 503 is the one 5xx allowed (overload, LD-1). Everything else runs as shipped.
CONFIG = f"""
{"" if SEED == "random" else f"seed = {int(SEED)}"}
# A request may take a full encode (seconds here): wait as long as the server's own deadline.
request-timeout = 120

[generation]
mode = "all"
max-examples = {EXAMPLES}
# A failure is reported with its request as a curl command; shrinking it further would
# re-send bodies that each cost an encode, for many minutes.
no-shrink = true

[checks.not_a_server_error]
expected-statuses = ["2xx", "3xx", "4xx", "503"]

[checks.positive_data_acceptance]
enabled = false
"""

# -- safetensors bodies that look right ------------------------------------------------------

ITEM_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "U8": 1, "BOOL": 1}


def raw_safetensors(
    tensors: list[tuple[str, Any, Any, bytes]], metadata: Any = None, prefix: int | None = None
) -> bytes:
    """(name, dtype, shape, data) packed as safetensors, whatever the values: the header says
    exactly what it is given, so a shape or dtype can disagree with the data, and a name
    given twice is a duplicate key."""
    items = [] if metadata is None else [("__metadata__", metadata)]
    offset = 0
    for name, dtype, shape, data in tensors:
        entry = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        items.append((name, entry))
        offset += len(data)
    raw = ("{" + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in items) + "}").encode()
    raw += b" " * (-len(raw) % 8)
    length = len(raw) if prefix is None else prefix
    return struct.pack("<Q", length) + raw + b"".join(t[3] for t in tensors)


def filled(dtype: str, count: int, value: float) -> bytes:
    """`count` elements of `dtype`, all `value` (as near as the dtype gets)."""
    if dtype in ("F32", "F16", "F64"):
        code = {"F32": "<f", "F16": "<e", "F64": "<d"}[dtype]
        try:
            one = struct.pack(code, value)
        except OverflowError:
            one = struct.pack(code, math.copysign(math.inf, value))
    else:
        one = bytes([int(value) & 0xFF if math.isfinite(value) else 0]) * ITEM_SIZES.get(dtype, 1)
    return one * count


def weighted(draw: st.DrawFn, choices: dict[str, int]) -> str:
    """One of `choices`, each as likely as its weight (shrinks to the first)."""
    names = [name for name, weight in choices.items() for _ in range(weight)]
    return draw(st.sampled_from(names))


VALUES = st.one_of(
    st.sampled_from([0.0, 1.0, -1.0, 0.5, math.nan, math.inf, -math.inf, 3e38, 65520.0, 1e-45]),
    st.floats(width=32),
)
DTYPES = st.sampled_from(["F32", "F32", "F16", "BF16", "F64", "I32", "U8", "BOOL", "f32", "F32 "])


@st.composite
def tensor(draw: st.DrawFn, name: str, shape: Any, dtypes: st.SearchStrategy[str] = DTYPES):
    """One (name, dtype, shape, data) entry whose data mostly fits its shape."""
    dtype = draw(dtypes)
    count = math.prod(shape) if all(isinstance(d, int) and d >= 0 for d in shape) else 0
    data = filled(dtype, count, draw(VALUES))
    fit = weighted(draw, {"exact": 8, "short": 1, "long": 1})
    if fit == "short":
        data = data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    elif fit == "long":
        data += bytes(draw(st.integers(1, 16)))
    return (name, dtype, shape, data)


@st.composite
def any_safetensors(draw: st.DrawFn) -> bytes:
    """A header of any JSON (bad shapes, dtypes, offsets, metadata), or a lying length."""
    entries = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["x", "image", "point_coords", "box", "__metadata__", "", "é"]),
                st.one_of(DTYPES, st.integers(), st.none()),
                st.one_of(
                    st.lists(st.integers(-2, 2**40), max_size=4),
                    st.lists(st.integers(0, 4), max_size=4),
                    st.text(max_size=4),
                    st.none(),
                ),
                st.binary(max_size=64),
            ),
            max_size=3,
        )
    )
    metadata = draw(
        st.one_of(
            st.none(),
            st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
            st.dictionaries(st.text(max_size=8), st.integers() | st.none(), max_size=2),
            st.lists(st.integers(), max_size=2),
        )
    )
    prefix = draw(st.none() | st.sampled_from([0, 1, 7, 2**20, 2**20 + 1, 2**63, 2**64 - 1]))
    body = raw_safetensors(entries, metadata, prefix)
    return body[: draw(st.integers(0, len(body)))] if draw(st.booleans()) else body


# Shapes some stage takes, for the stage route to mix up.
def shape_variants(shape: tuple[int, ...]) -> st.SearchStrategy[list[int]]:
    def change(i: int, delta: int) -> list[int]:
        out = list(shape)
        out[i] = max(out[i] + delta, 0)
        return out

    return st.one_of(
        st.builds(change, st.integers(0, len(shape) - 1), st.sampled_from([-1, 1, -(10**9)])),
        st.just(list(shape[:-1])),
        st.just([*shape, 1]),
        st.just([math.prod(shape)]),
        st.just(list(reversed(shape))),
        st.lists(st.integers(0, 8), max_size=4),
    )


def stage_bodies(stage: Any) -> st.SearchStrategy[bytes]:
    """{"x": ...} for POST /stages/{stage}. Only the neck, the cheapest stage, is ever sent
    the exact shape it takes: every other body is refused before any compute."""
    shape = STAGES.get(stage, (64, 64, 320))
    others = [list(s) for s in STAGES.values() if s != shape]
    shapes = st.one_of(shape_variants(shape), st.sampled_from(others))

    @st.composite
    def body(draw: st.DrawFn) -> bytes:
        if stage == "neck" and not draw(st.integers(0, 7)):
            return raw_safetensors(
                [draw(tensor("x", list(shape), st.sampled_from(["F32", "F16"])))]
            )
        name = weighted(draw, {"x": 8, "input": 1, "embeddings": 1})
        entries = [draw(tensor(name, draw(shapes)))]
        if draw(st.integers(0, 9)) == 0:
            entries.append(draw(tensor("y", [1])))
        return raw_safetensors(entries)

    return body()


TINY = (8, 6)


def image_file(kind: str, size: tuple[int, int] = TINY, exif: bytes | None = None) -> bytes:
    out = io.BytesIO()
    extra = {"exif": exif} if exif else {}
    Image.new("RGB", size, (200, 100, 50)).save(out, kind, **extra)
    return out.getvalue()


def orientation_exif() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90
    return exif.tobytes()


KINDS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}
# Where an EXIF block that is not TIFF fails the decode (JPEG decodes it anyway: a new image,
# a full encode, for every magic drawn).
BROKEN_EXIF = ("image/png", "image/webp")
TEMPLATES = {media: image_file(kind) for media, kind in KINDS.items()}
EXIF_TEMPLATES = {media: image_file(KINDS[media], exif=orientation_exif()) for media in BROKEN_EXIF}
# The only image bodies that decode: each is encoded once, then a cache hit.
VALID_IMAGES = {"image/jpeg": PHOTO.read_bytes(), "image/png": TEMPLATES["image/png"]}
VALID_PIXELS = messages.encode_image(bytes(range(8 * 6 * 3)), 6, 8, 3)
VALID_PIXELS_SHA = hashlib.sha256(VALID_PIXELS).hexdigest()
PHOTO_SHA = hashlib.sha256(PHOTO.read_bytes()).hexdigest()
PHOTO_SIZE = decode_upload(PHOTO.read_bytes(), "image/jpeg").shape[:2]  # (H, W)


def png(width: int, height: int, chunks: list[tuple[bytes, bytes]]) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = b"".join(chunk(k, d) for k, d in chunks)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + body + chunk(b"IEND", b"")


def broken_exif(media: str, magic: bytes) -> bytes:
    """The template with EXIF whose TIFF header is `magic` (not a valid one)."""
    data = EXIF_TEMPLATES[media]
    at = data.index(b"MM\x00*") if b"MM\x00*" in data else data.index(b"II*\x00")
    return data[:at] + magic + data[at + 4 :]


def short_idat(length: int) -> bytes:
    """The PNG template with its IDAT chunk declaring `length` bytes, fewer than it has."""
    data = TEMPLATES["image/png"]
    at = data.index(b"IDAT") - 4
    return data[:at] + struct.pack(">I", length) + data[at + 4 :]


def image_bodies(media: str) -> st.SearchStrategy[bytes]:
    """Bodies for one image type: all broken but the few VALID_IMAGES."""
    template = TEMPLATES[media]
    at = TEMPLATES["image/png"].index(b"IDAT") - 4
    idat = struct.unpack(">I", TEMPLATES["image/png"][at : at + 4])[0]
    # Not TIFF at all, or a little-endian BigTIFF header (Pillow reads on past the block).
    bad_magic = st.sampled_from([b"II+\x00"]) | st.binary(min_size=4, max_size=4).filter(
        lambda m: m[:2] not in (b"MM", b"II")
    )
    families = [
        st.binary(max_size=256),
        st.sampled_from([t for m, t in TEMPLATES.items() if m != media]),
        st.integers(0, len(template) // 2).map(lambda n: template[:n]),
        st.builds(
            png,
            st.sampled_from([0, 1, 2049, 4000, 100_000, 2**31 - 1]),
            st.sampled_from([0, 1, 3000, 100_000, 2**31 - 1]),
            st.lists(
                st.tuples(st.binary(min_size=4, max_size=4), st.binary(max_size=8)), max_size=2
            ),
        ),
    ]
    if media == "image/png":
        families.append(st.integers(1, idat // 2).map(short_idat))
    if media in BROKEN_EXIF:
        families.append(bad_magic.map(lambda magic: broken_exif(media, magic)))
    if media in VALID_IMAGES:
        families.append(st.just(VALID_IMAGES[media]))
    return st.one_of(families)


@st.composite
def pixel_bodies(draw: st.DrawFn) -> bytes:
    """{"image": (H, W, C) uint8} for the image routes: wrong channels, empty, too thin, over
    the pixel limit (its boundary included), wrong dtypes; rarely the one valid tiny image."""
    case = weighted(
        draw,
        {"channels": 3, "empty": 2, "thin": 1, "too-big": 1, "dtype": 2, "names": 2, "valid": 1},
    )
    if case == "valid":
        return VALID_PIXELS
    h, w, c = 6, 8, 3
    dtypes = st.just("U8")
    if case == "channels":
        c = draw(st.sampled_from([0, 2, 5, 255]))
    elif case == "empty":
        h, w = draw(st.sampled_from([(0, 8), (8, 0), (0, 0)]))
    elif case == "thin":
        h, w = draw(st.sampled_from([(1, 2049), (3000, 1)]))
    elif case == "too-big":
        # One pixel over the limit is refused; the body is still under the 64 MiB cap.
        h, w, c = 1, MAX_IMAGE_PIXELS + 1, 1
    elif case == "dtype":
        dtypes = st.sampled_from(["F32", "F16", "I32", "BOOL", "I8"])
    name = "image" if case != "names" else draw(st.sampled_from(["x", "Image", "pixels"]))
    return raw_safetensors([draw(tensor(name, [h, w, c], dtypes))])


F32 = st.floats(width=32)
ODD = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, -0.0, 3e38, 1e-45]) | F32
PROMPT_MUTATIONS = {
    "none": 2,
    "many": 1,
    "coords": 2,
    "labels": 2,
    "box": 1,
    "mask": 1,
    "metadata": 2,
    "extra": 1,
}


def f32s(values: list[float]) -> bytes:
    return b"".join(filled("F32", 1, v) for v in values)


@st.composite
def prompt_bodies(draw: st.DrawFn, size: tuple[int, int]) -> bytes:
    """Prompts for POST /images/{sha}/predict on an image of `size` (H, W): a well-formed one
    (points and a box inside the image, a mask), then at most one thing made wrong: a value
    off the image or not finite, a label or count, a shape or dtype, the metadata."""
    h, w = size
    n = draw(st.sampled_from([1, 1, 2, 3, 0, 16]))
    points = [[draw(st.floats(0, w, width=32)), draw(st.floats(0, h, width=32))] for _ in range(n)]
    labels = [draw(st.sampled_from([1, 0])) for _ in range(n)]
    xs = sorted(draw(st.floats(0, w, width=32)) for _ in range(2))
    ys = sorted(draw(st.floats(0, h, width=32)) for _ in range(2))
    box = [xs[0], ys[0], xs[1], ys[1]] if draw(st.booleans()) or not n else None
    coords = ("point_coords", "F32", [n, 2], f32s([v for p in points for v in p]))
    entries = [coords, ("point_labels", "I32", [n], struct.pack(f"<{n}i", *labels))] if n else []
    if box is not None:
        entries.append(("box", "F32", [4], f32s(box)))
    if not draw(st.integers(0, 4)):
        entries.append(draw(tensor("mask_input", [1, 256, 256], st.just("F32"))))
    metadata: Any = {
        "multimask_output": draw(st.sampled_from(["true", "false"])),
        "low_res": draw(st.sampled_from(["all", "best", "none"])),
    }
    mutation = weighted(draw, PROMPT_MUTATIONS)
    if mutation == "many":
        # Just over the server's limit, and over what the positional encoding takes.
        many = draw(st.sampled_from([MAX_PROMPT_POINTS + 1, 65536]))
        entries = [
            ("point_coords", "F32", [many, 2], filled("F32", 2 * many, 1.0)),
            ("point_labels", "I32", [many], struct.pack("<i", 1) * many),
        ]
    elif mutation == "coords" and n:
        flat = [v for p in points for v in p]
        flat[draw(st.integers(0, len(flat) - 1))] = draw(ODD | st.just(w + 1.0))
        shape = draw(st.sampled_from([[n, 2], [2 * n], [n, 2, 1]]))
        entries[0] = (
            "point_coords",
            draw(st.sampled_from(["F32", "F16", "F64"])),
            shape,
            f32s(flat),
        )
    elif mutation == "labels" and n:
        labels[draw(st.integers(0, n - 1))] = draw(st.sampled_from([-1, 2, 5, 2**31 - 1]))
        labels = labels[: draw(st.integers(0, n))] if draw(st.booleans()) else labels
        entries[1] = (
            "point_labels",
            "I32",
            [len(labels)],
            struct.pack(f"<{len(labels)}i", *labels),
        )
        if draw(st.booleans()):
            entries.pop(draw(st.integers(0, 1)))
    elif mutation == "box":
        values = draw(st.lists(ODD | st.floats(-10, w + 10, width=32), min_size=4, max_size=4))
        shape = draw(st.sampled_from([[4], [4], [1, 4], [2, 2], [5]]))
        entries.append(("box", "F32", shape, f32s(values)))
    elif mutation == "mask":
        shape = draw(st.sampled_from([[1, 128, 128], [256, 256], [1, 256, 256]]))
        entries.append(draw(tensor("mask_input", shape, st.sampled_from(["F32", "F16"]))))
    elif mutation == "metadata":
        metadata = draw(
            st.one_of(
                st.none(),
                st.fixed_dictionaries(
                    {"multimask_output": st.text(max_size=5), "low_res": st.text(max_size=5)}
                ),
                st.dictionaries(
                    st.text(max_size=16), st.text(max_size=8) | st.integers(), max_size=3
                ),
            )
        )
    elif mutation == "extra":
        entries.append(draw(tensor(draw(st.sampled_from(["image", "x", "box2"])), [1])))
    # A box or mask added to one already there is a duplicate key.
    return raw_safetensors(draw(st.permutations(entries)), metadata)


# The document's image types get their own bodies; application/octet-stream, shared by every
# route, gets generic ones here and route-specific ones in `flatmap_case` below.
for _media in KINDS:
    schemathesis.openapi.media_type(_media, image_bodies(_media))
schemathesis.openapi.media_type(OCTETS, st.one_of(st.binary(max_size=64), any_safetensors()))


# -- the app, the schema, what the fuzzer saw ------------------------------------------------


class Log:
    """Every fuzzed request: statuses and round-trip seconds per (method, path template)."""

    def __init__(self) -> None:
        self.statuses: dict[tuple[str, str], collections.Counter[int]] = collections.defaultdict(
            collections.Counter
        )
        self.seconds: collections.Counter[tuple[str, str]] = collections.Counter()

    def record(self, method: str, path: str, status: int, seconds: float) -> None:
        self.statuses[(method, path)][status] += 1
        self.seconds[(method, path)] += seconds

    def histogram(self) -> collections.Counter[int]:
        return sum(self.statuses.values(), collections.Counter())

    def report(self) -> str:
        total = sum(self.histogram().values())
        lines = [f"{total} requests, {sum(self.seconds.values()):.0f} s of round trips"]
        for (method, path), counts in sorted(self.statuses.items(), key=lambda kv: kv[0][::-1]):
            seconds = self.seconds[(method, path)]
            lines.append(f"  {method:7} {path:30} {seconds:5.1f} s {dict(sorted(counts.items()))}")
        lines.append(f"  statuses: {dict(sorted(self.histogram().items()))}")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def app(bundle, converted_weights, offload_engine):
    # schemathesis' ASGI client sends Host: testserver.
    return create_app(
        bundle,
        converted_weights,
        hosts={"testserver"},
        engine=offload_engine,
        settings=ApiSettings(),
    )


@pytest.fixture(scope="module")
def photo(app) -> dict[str, Any]:
    """picture1.jpg uploaded (a cache hit when test_api ran first), so that predicts on
    PHOTO_SHA reach the decoder."""
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post(
            "/api/v1/images", content=PHOTO.read_bytes(), headers={"Content-Type": "image/jpeg"}
        )
    assert response.status_code == 200, response.text
    assert response.json()["image_sha256"] == PHOTO_SHA
    assert (response.json()["height"], response.json()["width"]) == PHOTO_SIZE
    return response.json()


@dataclass(frozen=True)
class Target:
    """Where the fuzzer's requests go: `call` is what Case.call takes to get there."""

    name: str
    call: dict[str, Any]

    def client(self) -> httpx2.Client:
        if "app" in self.call:
            return TestClient(self.call["app"], raise_server_exceptions=False)
        return httpx2.Client(base_url=self.call["base_url"], timeout=120)


@pytest.fixture(scope="module", params=["in-process", "live"])
def target(request, app, bundle, converted_weights, offload_engine) -> Iterator[Target]:
    """The app in-process (ASGI), then served by uvicorn on 127.0.0.1 (ServerThread)."""
    if request.param == "in-process":
        yield Target("in-process", {"app": app})
        return
    settings = ApiSettings()
    with ServerThread(bundle, converted_weights, engine=offload_engine, settings=settings) as s:
        yield Target("live", {"base_url": s.url})


@pytest.fixture(scope="module")
def log(target: Target) -> Log:
    return Log()


def assert_clean_error(response: Any, method: str) -> None:
    """An error is JSON {"error": <words>} that shows nothing of the server's insides (SV-4)."""
    if response.status_code < 400 or method == "HEAD":
        return
    # schemathesis' Response keeps every value of a header, in a list.
    assert response.headers["content-type"] == ["application/json"], response.headers
    body = response.json()
    assert list(body) == ["error"] and isinstance(body["error"], str), body
    leaks = [leak for leak in LEAKS if leak in body["error"]]
    assert not leaks, f"the message shows {leaks}: {body['error']!r}"


# -- the campaign ----------------------------------------------------------------------------

# The document as the server builds it (the engine's stages are checked against STAGES below),
# so that pytest can collect one test per operation before the engine exists.
schema = schemathesis.openapi.from_dict(
    openapi_document(list(STAGES)), config=schemathesis.Config.from_str(CONFIG)
)


EVERYTHING = "/api/v1/images/{sha}/everything"


def cheap_everything(body: Any) -> Any:
    """A valid segment-everything body made cheap (one prompt, no crops: a full run on
    picture1 takes minutes here); any other body is left as it is, to be refused."""
    try:
        parse_parameters(json.dumps(body).encode())
    except (InputError, TypeError, ValueError):
        return body
    return {**body, "points_per_side": 1, "crop_n_layers": 0}


@schema.hook
def flatmap_case(context: schemathesis.HookContext, case: schemathesis.Case):
    """Route-specific octet-stream bodies; the predict and everything routes' sha is often
    an image the cache holds, so that their bodies get past the 404."""
    path = case.operation.path
    body = st.just(cheap_everything(case.body) if path == EVERYTHING else case.body)
    if case.media_type == OCTETS:
        if path == "/api/v1/stages/{stage}":
            specific = stage_bodies(case.path_parameters.get("stage"))
        elif path == "/api/v1/images/{sha}/predict":
            specific = prompt_bodies(PHOTO_SIZE)
        else:
            specific = pixel_bodies()
        body = st.one_of(specific, specific, specific, any_safetensors(), st.binary(max_size=64))
    sha = st.just(case.path_parameters.get("sha"))
    if "sha" in case.path_parameters and _positive(case, ParameterLocation.PATH):
        sha = st.one_of(st.sampled_from([PHOTO_SHA, VALID_PIXELS_SHA]), sha)

    def build(values: tuple[Any, Any]) -> schemathesis.Case:
        case.body = values[0]
        if values[1] is not None:
            case.path_parameters = {**case.path_parameters, "sha": values[1]}
        return case

    return st.tuples(body, sha).map(build)


@schema.hook
def filter_failure(
    context: schemathesis.HookContext,
    failure: Failure,
    case: schemathesis.Case,
    response: schemathesis.Response,
) -> bool:
    """Every byte string is a valid `format: binary` body, yet schemathesis labels the bodies it
    draws in negative mode invalid: a request whose only "invalid" part is its body may well
    be accepted. Negative path and query values must still be refused."""
    if not isinstance(failure, AcceptedNegativeData) or case.meta is None:
        return True
    negative = {where for where, info in case.meta.components.items() if info.mode.is_negative}
    return negative != {ParameterLocation.BODY}


def _positive(case: schemathesis.Case, location: ParameterLocation) -> bool:
    """Whether the case's `location` was generated valid (schemathesis checks negative
    values are refused, so those are left as they are)."""
    meta = case.meta
    info = meta.components.get(location) if meta is not None else None
    return info is None or not info.mode.is_negative


@schema.parametrize()
@pytest.mark.requirement("SV-7")
def test_the_api_survives_fuzzing(case: schemathesis.Case, target: Target, photo, log: Log) -> None:
    start = time.perf_counter()
    response = case.call(**target.call)
    method = case.method.upper()
    log.record(method, case.operation.path, response.status_code, time.perf_counter() - start)
    assert response.status_code < 500 or response.status_code == 503, response.content[:300]
    assert_clean_error(response, method)
    case.validate_response(response, excluded_checks=[positive_data_acceptance])


def test_the_fuzzed_document_is_the_served_one(app, offload_engine) -> None:
    stages = {stage.name: stage.input_shape for stage in offload_engine.stages}
    assert stages == STAGES
    served = TestClient(app).get("/api/v1/openapi.json").json()
    assert served == schema.raw_schema


@pytest.mark.requirement("SV-7")
def test_every_operation_was_fuzzed_and_the_server_is_healthy(
    target: Target, photo, log: Log, evidence
) -> None:
    print(f"\n{target.name}: {log.report()}")
    histogram = log.histogram()
    server_errors = sum(n for status, n in histogram.items() if status >= 500 and status != 503)
    evidence(
        "SV-7",
        f"{target.name}: {sum(histogram.values())} requests over {len(log.statuses)} "
        f"operations, {server_errors} 5xx other than 503",
    )
    declared = {
        (method.upper(), path)
        for path, operations in schema.raw_schema["paths"].items()
        for method in operations
    }
    missing = declared - set(log.statuses)
    assert not missing, f"never fuzzed: {sorted(missing)} (run the whole module)"
    # Each route that takes a body got many; the GETs have nothing to vary.
    assert all(sum(log.statuses[op].values()) >= 20 for op in declared if op[0] == "POST")
    # Methods the document does not declare were tried too, and refused.
    undeclared = {op: counts for op, counts in log.statuses.items() if op not in declared}
    assert undeclared, "no undeclared method was tried"
    assert all(set(counts) <= {404, 405} for counts in undeclared.values()), undeclared

    x = raw_safetensors([("x", "F32", [64, 64, 320], filled("F32", 64 * 64 * 320, 0.5))])
    prompt = messages.encode_prompt(Prompt.of([[10, 10]], [1]))
    with target.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"ready": True}
        headers = {"Content-Type": OCTETS}
        response = client.post("/api/v1/stages/neck", content=x, headers=headers)
        assert response.status_code == 200, response.text
        response = client.post(
            f"/api/v1/images/{PHOTO_SHA}/predict", content=prompt, headers=headers
        )
        assert response.status_code == 200, response.text
        assert messages.decode_prediction(response.content).shape == (3, *PHOTO_SIZE)
