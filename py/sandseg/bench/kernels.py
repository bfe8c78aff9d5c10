"""`sandseg bench kernels`: each kernel at MobileSAM's shapes next to numpy doing the same math.

Throughput is GFLOP/s for compute-bound kernels and GB/s (bytes read + written once) for
memory-bound ones; every figure is the median of `repeat` runs, and the ratio is taken
against numpy measured in the same run on the same machine.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

from .. import ops
from ..gpu import get_device
from ..gpu.native import NativeDevice


@dataclass
class Case:
    kernel: str
    shape: str
    unit: str  # "GFLOP/s" or "GB/s"
    work: float  # FLOPs or bytes per run
    run_gpu: Callable[[], object]
    run_numpy: Callable[[], object]


def _f32(rng: np.random.Generator, *shape: int) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _affine(a: np.ndarray, b: np.ndarray, bias: np.ndarray) -> np.ndarray:
    return a @ b + bias


_DTYPES = {"float32": "f32", "uint32": "u32", "int32": "i32"}


def _up(device: NativeDevice, array: np.ndarray):
    dtype = _DTYPES[array.dtype.name]
    return device.upload(np.ascontiguousarray(array).tobytes(), array.shape, dtype)


def _gb(kernel: str, shape: str, nbytes: float, gpu: Callable, cpu: Callable) -> Case:
    """A memory-bound case; nbytes: what the kernel must read and write at least once."""
    return Case(kernel, shape, "GB/s", nbytes, gpu, cpu)


def _gflop(kernel: str, shape: str, flops: float, gpu: Callable, cpu: Callable) -> Case:
    return Case(kernel, shape, "GFLOP/s", flops, gpu, cpu)


def matmul_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    cases = []
    # (M, K, N, what): the linear layers that carry most of the encoder's 50.8 GFLOP.
    for m, k, n, what in [
        (16384, 128, 512, "layers.1 mlp.fc1"),
        (16384, 512, 128, "layers.1 mlp.fc2"),
        (17689, 128, 384, "layers.1 attn.qkv, 361 windows"),
        (4096, 160, 640, "layers.2 mlp.fc1"),
        (4096, 320, 1280, "layers.3 mlp.fc1"),
        (4096, 1280, 320, "layers.3 mlp.fc2"),
        (4096, 320, 256, "neck.0 (1x1 conv)"),
    ]:
        a, b, bias = _f32(rng, m, k), _f32(rng, k, n), _f32(rng, n)
        ga, gb, gbias = _up(device, a), _up(device, b), _up(device, bias)
        cases.append(
            Case(
                "matmul",
                f"{m}x{k} @ {k}x{n} +bias ({what})",
                "GFLOP/s",
                2.0 * m * k * n,
                functools.partial(ops.matmul, ga, gb, bias=gbias),
                functools.partial(_affine, a, b, bias),
            )
        )
    a, b = _f32(rng, 65536, 32), _f32(rng, 4, 32)
    ga, gb = _up(device, a), _up(device, b)
    cases.append(
        Case(
            "matmul_strided",
            "65536x32 @ (4x32)^T (transposed operand, general path)",
            "GFLOP/s",
            2.0 * 65536 * 32 * 4,
            lambda: ops.matmul(ga, gb, trans_b=True),
            lambda: a @ b.T,
        )
    )
    return cases


# numpy baselines: the same math as each kernel, float32 throughout.


def _conv2d_np(
    x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, stride: int, pad: int
) -> np.ndarray:
    """im2col through a strided window view, then one matmul with the HWIO weight."""
    kh, kw, cin, cout = w.shape
    xp = np.pad(x, ((pad, pad), (pad, pad), (0, 0)))
    win = sliding_window_view(xp, (kh, kw), axis=(0, 1))[::stride, ::stride]  # Ho, Wo, C, kh, kw
    ho, wo = win.shape[:2]
    out = win.transpose(0, 1, 3, 4, 2).reshape(ho * wo, kh * kw * cin) @ w.reshape(-1, cout)
    if bias is not None:
        out += bias
    return out.reshape(ho, wo, cout)


def _depthwise_np(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """Stride 1, same padding: the sum of kh * kw shifted slices times their weights."""
    (h, wd, _), (kh, kw, _) = x.shape, w.shape
    xp = np.pad(x, ((kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = xp[:h, :wd] * w[0, 0] + bias
    for i in range(kh):
        for j in range(kw):
            if i or j:
                out += xp[i : i + h, j : j + wd] * w[i, j]
    return out


def _conv_t2x2_np(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    (h, wd, cin), cout = x.shape, w.shape[3]
    y = (x.reshape(h * wd, cin) @ w.reshape(cin, 4 * cout)).reshape(h, wd, 2, 2, cout)
    y += bias
    return np.ascontiguousarray(y.transpose(0, 2, 1, 3, 4)).reshape(2 * h, 2 * wd, cout)


def _softmax_np(s: np.ndarray) -> np.ndarray:
    e = np.exp(s - s.max(axis=-1, keepdims=True))
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _mha_np(
    q: np.ndarray, k: np.ndarray, v: np.ndarray, bias: np.ndarray | None, scale: float
) -> np.ndarray:
    """softmax(scale * q k^T + bias) v on (..., heads, N, d) stacks: batched matmuls."""
    s = (q @ k.swapaxes(-1, -2)) * scale
    if bias is not None:
        s += bias
    return _softmax_np(s) @ v


def _qkv_packed_np(qkv: np.ndarray, heads: int, kd: int, bias: np.ndarray) -> np.ndarray:
    b, n, _ = qkv.shape
    t = qkv.reshape(b, n, heads, -1).transpose(0, 2, 1, 3)  # (B, heads, N, q | k | v)
    out = _mha_np(t[..., :kd], t[..., kd : 2 * kd], t[..., 2 * kd :], bias, kd**-0.5)
    return out.transpose(0, 2, 1, 3).reshape(b, n, -1)


def _attention_np(q: np.ndarray, k: np.ndarray, v: np.ndarray, heads: int) -> np.ndarray:
    qh, kh, vh = (t.reshape(t.shape[0], heads, -1).transpose(1, 0, 2) for t in (q, k, v))
    out = _mha_np(qh, kh, vh, None, qh.shape[-1] ** -0.5)
    return out.transpose(1, 0, 2).reshape(q.shape[0], -1)


def _pe_np(coords: np.ndarray, gaussian: np.ndarray) -> np.ndarray:
    proj = (coords @ gaussian) * np.float32(2 * np.pi)
    return np.concatenate([np.sin(proj), np.cos(proj)], axis=-1)


def _layer_norm_np(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    d = x - x.mean(axis=-1, keepdims=True)
    return d / np.sqrt((d * d).mean(axis=-1, keepdims=True) + eps) * w + b


def _window_partition_np(x: np.ndarray, ws: int) -> np.ndarray:
    h, w, c = x.shape
    nh, nw = -(-h // ws), -(-w // ws)
    xp = np.pad(x, ((0, nh * ws - h), (0, nw * ws - w), (0, 0)))
    t = xp.reshape(nh, ws, nw, ws, c).transpose(0, 2, 1, 3, 4)
    return np.ascontiguousarray(t).reshape(nh * nw, ws * ws, c)


def _window_reverse_np(win: np.ndarray, residual: np.ndarray) -> np.ndarray:
    (h, w, c), ws = residual.shape, math.isqrt(win.shape[1])
    nh, nw = -(-h // ws), -(-w // ws)
    t = win.reshape(nh, nw, ws, ws, c).transpose(0, 2, 1, 3, 4).reshape(nh * ws, nw * ws, c)
    return t[:h, :w] + residual


def _bilinear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """torch's align_corners=False source indices i0, i1 and weight of i1 for each output."""
    src = (np.arange(n_out, dtype=np.float32) + 0.5) * np.float32(n_in / n_out) - 0.5
    src = np.maximum(src, 0)
    i0 = np.minimum(src.astype(np.intp), n_in - 1)
    return i0, np.minimum(i0 + 1, n_in - 1), (src - i0).astype(np.float32)


def _resize_bilinear_np(x: np.ndarray, ty: tuple, tx: tuple) -> np.ndarray:
    (y0, y1, wy), (x0, x1, wx) = ty, tx
    rows = x[:, y0] * (1 - wy)[:, None] + x[:, y1] * wy[:, None]
    return rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx


def _preprocess_np(x: np.ndarray, mean: np.ndarray, std: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size, size, 3), np.float32)
    out[: x.shape[0], : x.shape[1]] = (x.astype(np.float32) - mean) / std
    return out


def conv_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    cases = []
    # (H, W, Cin, Cout, stride, bias, what): the two dense 3x3 convolutions of the encoder.
    for h, cin, cout, stride, has_bias, what in [
        (512, 32, 64, 2, True, "patch_embed.seq.2"),
        (64, 256, 256, 1, False, "neck.2"),
    ]:
        x, w = _f32(rng, h, h, cin), _f32(rng, 3, 3, cin, cout)
        bias = _f32(rng, cout) if has_bias else None
        gx, gw = _up(device, x), _up(device, w)
        gb = _up(device, bias) if bias is not None else None
        ho = h // stride
        cases.append(
            _gflop(
                "conv2d",
                f"{h}x{h}x{cin} -> {ho}x{ho}x{cout} 3x3 s{stride}{' +bias' * has_bias} ({what})",
                2.0 * ho * ho * cout * 9 * cin,
                functools.partial(ops.conv2d, gx, gw, gb, stride=stride, padding=1),
                functools.partial(_conv2d_np, x, w, bias, stride, 1),
            )
        )
    x, w, b = _f32(rng, 256, 256, 256), _f32(rng, 3, 3, 256), _f32(rng, 256)
    gx, gw, gb = _up(device, x), _up(device, w), _up(device, b)
    cases.append(
        _gb(
            "conv2d_depthwise",
            "256x256x256 3x3 s1 +bias (layers.0 MBConv conv2)",
            2.0 * x.nbytes + w.nbytes + b.nbytes,
            functools.partial(ops.conv2d_depthwise, gx, gw, gb, padding=1),
            functools.partial(_depthwise_np, x, w, b),
        )
    )
    x, w, b = _f32(rng, 64, 64, 256), _f32(rng, 256, 2, 2, 64), _f32(rng, 64)
    gx, gw, gb = _up(device, x), _up(device, w), _up(device, b)
    cases.append(
        _gflop(
            "conv_transpose2x2",
            "64x64x256 -> 128x128x64 +bias (output_upscaling.0)",
            2.0 * 64 * 64 * 256 * 4 * 64,
            functools.partial(ops.conv_transpose2x2, gx, gw, gb),
            functools.partial(_conv_t2x2_np, x, w, b),
        )
    )
    return cases


def attention_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    cases = []
    # TinyViT windows, attention on the packed qkv Linear output (key_dim = v_dim = 32).
    for windows, n, heads, what in [(361, 49, 4, "layers.1"), (25, 196, 5, "layers.2")]:
        qkv, bias = _f32(rng, windows, n, heads * 96), _f32(rng, heads, n, n)
        gqkv, gbias = _up(device, qkv), _up(device, bias)
        cases.append(
            _gflop(
                "attention",
                f"{windows} win x {n} tok, {heads} heads x 32 +bias ({what} qkv_packed)",
                4.0 * windows * heads * n * n * 32,
                functools.partial(
                    ops.qkv_packed, gqkv, heads=heads, key_dim=32, v_dim=32, bias=gbias
                ),
                functools.partial(_qkv_packed_np, qkv, heads, 32, bias),
            )
        )
    q, k, v = _f32(rng, 7, 128), _f32(rng, 4096, 128), _f32(rng, 4096, 128)
    gq, gk, gv = _up(device, q), _up(device, k), _up(device, v)
    cases.append(
        _gflop(
            "attention",
            "q 7x128, kv 4096x128, 8 heads x 16 (decoder token->image)",
            4.0 * 7 * 4096 * 128,
            functools.partial(ops.attention, gq, gk, gv, heads=8, head_dim=16),
            functools.partial(_attention_np, q, k, v, 8),
        )
    )
    return cases


def encoding_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    gaussian = _f32(rng, 2, 128)
    ys, xs = np.divmod(np.arange(64 * 64, dtype=np.float32), np.float32(64))
    coords = np.stack([xs, ys], axis=-1) * np.float32(2 / 64) + np.float32(1 / 64 - 1)
    gg = _up(device, gaussian)
    return [
        _gflop(
            "positional_encoding",
            "64x64 grid @ 2x128 -> sin|cos 4096x256 (dense image PE)",
            2.0 * 64 * 64 * 2 * 128,  # the projection's multiply-adds; sin and cos not counted
            functools.partial(ops.positional_encoding, None, gg, grid=(64, 64)),
            functools.partial(_pe_np, coords, gaussian),
        )
    ]


def norm_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    cases = []
    for rows, c, eps, what in [
        (16384, 128, 1e-5, "layers.1 mlp.norm"),
        (4096, 256, 1e-6, "neck.1 LayerNorm2d"),
    ]:
        x, w, b = _f32(rng, rows, c), _f32(rng, c), _f32(rng, c)
        gx, gw, gb = _up(device, x), _up(device, w), _up(device, b)
        cases.append(
            _gb(
                "layer_norm",
                f"{rows}x{c} eps {eps:g} ({what})",
                2.0 * x.nbytes + w.nbytes + b.nbytes,
                functools.partial(ops.layer_norm, gx, gw, gb, eps=eps),
                functools.partial(_layer_norm_np, x, w, b, eps),
            )
        )
    # The attention kernel fuses its softmax; standalone, at layers.2's score shape.
    s = _f32(rng, 125, 196, 196)
    gs = _up(device, s)
    cases.append(
        _gb(
            "softmax",
            "125x196x196 (layers.2 scores: 25 win x 5 heads)",
            2.0 * s.nbytes,
            functools.partial(ops.softmax, gs),
            functools.partial(_softmax_np, s),
        )
    )
    return cases


def elementwise_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    a, b = _f32(rng, 4096, 256), _f32(rng, 4096, 256)
    x, scale, shift = _f32(rng, 512, 512, 32), _f32(rng, 32), _f32(rng, 32)
    ga, gb, gx, gscale, gshift = (_up(device, t) for t in (a, b, x, scale, shift))
    return [
        _gb(
            "elementwise",
            "add 4096x256 (decoder keys + image_pe)",
            3.0 * a.nbytes,
            functools.partial(ops.add, ga, gb),
            functools.partial(np.add, a, b),
        ),
        _gb(
            "elementwise",
            "scale_shift 512x512x32 (patch_embed.seq.0 map size)",
            2.0 * x.nbytes + scale.nbytes + shift.nbytes,
            functools.partial(ops.scale_shift, gx, gscale, gshift),
            lambda: x * scale + shift,
        ),
    ]


def layout_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    nchw, fmap, windows = _f32(rng, 64, 256, 256), _f32(rng, 128, 128, 128), _f32(rng, 361, 49, 128)
    gnchw, gmap, gwin = _up(device, nchw), _up(device, fmap), _up(device, windows)
    return [
        _gb(
            "permute",
            "64x256x256 -> 256x256x64, CHW->HWC (patch_embed output)",
            2.0 * nchw.nbytes,
            functools.partial(ops.permute, gnchw, (1, 2, 0)),
            lambda: np.ascontiguousarray(nchw.transpose(1, 2, 0)),
        ),
        _gb(
            "window_partition",
            "128x128x128, window 7 -> 361x49x128 (layers.1)",
            fmap.nbytes + windows.nbytes,
            functools.partial(ops.window_partition, gmap, 7),
            functools.partial(_window_partition_np, fmap, 7),
        ),
        _gb(
            "window_reverse",
            "361x49x128 -> 128x128x128 +residual (layers.1)",
            windows.nbytes + 2.0 * fmap.nbytes,
            functools.partial(ops.window_reverse, gwin, 128, 128, residual=gmap),
            functools.partial(_window_reverse_np, windows, fmap),
        ),
    ]


def image_cases(device: NativeDevice, rng: np.random.Generator) -> list[Case]:
    cases = []
    # A picture-sized RGB image, resized as SAM's ResizeLongestSide(1024) does.
    image = rng.integers(0, 256, (770, 769, 3), dtype=np.uint8)
    raw = image.tobytes()
    gwords = _up(device, np.frombuffer(raw + bytes(-len(raw) % 4), np.uint32))
    pil = Image.fromarray(image)
    cases.append(
        _gb(
            "resize_antialias",
            "770x769x3 u8 -> 1024x1023x3 u32, vs PIL (preprocess)",
            image.nbytes + 1024 * 1023 * 3 * 4.0,
            functools.partial(ops.resize_antialias, gwords, 770, 769, 3, 1024, 1023),
            functools.partial(pil.resize, (1023, 1024), Image.Resampling.BILINEAR),
        )
    )
    resized = rng.integers(0, 256, (1024, 1023, 3), dtype=np.uint32)
    mean, std = (
        np.array(v, np.float32) for v in (ops.image.SAM_PIXEL_MEAN, ops.image.SAM_PIXEL_STD)
    )
    gresized = _up(device, resized)
    cases.append(
        _gb(
            "preprocess",
            "1024x1023x3 u32 -> 1024x1024x3 f32, (x-mean)/std, pad",
            resized.nbytes + 1024 * 1024 * 3 * 4.0,
            functools.partial(ops.preprocess, gresized),
            functools.partial(_preprocess_np, resized, mean, std, 1024),
        )
    )
    low_res, logits = _f32(rng, 3, 256, 256), _f32(rng, 3, 770, 769)
    glow, glogits = _up(device, low_res), _up(device, logits)
    taps = _bilinear_taps(256, 1024)
    cases.append(
        _gb(
            "resize_bilinear",
            "3x256x256 -> 3x1024x1024 (postprocess low-res masks)",
            low_res.nbytes + 3 * 1024 * 1024 * 4.0,
            functools.partial(ops.resize_bilinear, glow, 1024, 1024),
            functools.partial(_resize_bilinear_np, low_res, taps, taps),
        )
    )
    cases.append(
        _gb(
            "threshold",
            "3x770x769 logits > 0 -> u8 masks (output masks)",
            logits.nbytes + 3 * 4 * -(-770 * 769 // 4),
            functools.partial(ops.threshold, glogits),
            lambda: logits > 0,
        )
    )
    return cases


CASE_BUILDERS: list[Callable[[NativeDevice, np.random.Generator], list[Case]]] = [
    matmul_cases,
    conv_cases,
    attention_cases,
    encoding_cases,
    norm_cases,
    elementwise_cases,
    layout_cases,
    image_cases,
]


def median_seconds(
    fn: Callable[[], object], repeat: int, sync: Callable[[], None], *, warm_up: bool = True
) -> float:
    if warm_up:
        fn()
        sync()  # the first run compiles pipelines; it is not timed
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run_kernel_bench(
    json_path: str | None = None, repeat: int = 5, only: list[str] | None = None
) -> int:
    device = get_device()
    assert isinstance(device, NativeDevice)
    rng = np.random.default_rng(0)
    print(f"adapter: {device.adapter_name}; median of {repeat} runs; numpy in the same run")
    header = f"{'kernel':<20} {'shape':<58} {'sandseg':>10} {'numpy':>10} {'ratio':>6}"
    print(header)
    print("-" * len(header))
    results = []
    for build in CASE_BUILDERS:
        for case in build(device, rng):
            if only and case.kernel not in only:
                continue
            gpu_s = median_seconds(case.run_gpu, repeat, device.wait_idle)
            np_s = median_seconds(case.run_numpy, repeat, lambda: None)
            ours, theirs = case.work / gpu_s / 1e9, case.work / np_s / 1e9
            print(
                f"{case.kernel:<20} {case.shape:<58} {ours:>10.2f} {theirs:>10.2f} "
                f"{ours / theirs:>6.3f}  {case.unit}"
            )
            results.append(
                {
                    "kernel": case.kernel,
                    "shape": case.shape,
                    "unit": case.unit,
                    "sandseg": ours,
                    "numpy": theirs,
                    "ratio": ours / theirs,
                    "sandseg_ms": gpu_s * 1e3,
                    "numpy_ms": np_s * 1e3,
                }
            )
    print("throughput in the unit shown on each row; ratio = sandseg / numpy")
    if json_path:
        doc = {
            "adapter": device.adapter_name,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "repeat": repeat,
            "results": results,
        }
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {json_path}")
    return 0
