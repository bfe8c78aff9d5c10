"""References for the convolutions (float64 inside, float32 out), channels-last, batch 1.

Each sums over the kernel window tap by tap; a tap is one slice of the zero-padded input,
so the loops stay short and every index is visible. Layouts match the ops: x (H, W, C),
conv2d weight (kh, kw, Cin // groups, Cout), depthwise weight (kh, kw, C), transposed-conv
weight (Cin, 2, 2, Cout).
"""

from __future__ import annotations

import numpy as np

from .linalg import activate


def _epilogue(y, bias, act, residual):
    if bias is not None:
        y = y + bias.astype(np.float64)
    y = activate(y, act)
    if residual is not None:
        y = y + residual.astype(np.float64)
    return y.astype(np.float32)


def _tap(xp, ky, kx, stride, ho, wo):
    """The (ho, wo, C) input values that kernel tap (ky, kx) meets, from the padded input."""
    return xp[ky : ky + stride * (ho - 1) + 1 : stride, kx : kx + stride * (wo - 1) + 1 : stride]


def _padded(x, padding):
    x = x.astype(np.float64)
    return np.pad(x, ((padding, padding), (padding, padding), (0, 0)))


def conv2d(x, weight, bias=None, *, stride=1, padding=0, groups=1, act=None, residual=None):
    h, w, cin = x.shape
    kh, kw, cin_g, cout = weight.shape
    assert cin == cin_g * groups and cout % groups == 0
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    xp = _padded(x, padding)
    wt = weight.astype(np.float64)
    cout_g = cout // groups
    y = np.zeros((ho, wo, cout))
    for g in range(groups):
        ins = slice(g * cin_g, (g + 1) * cin_g)
        outs = slice(g * cout_g, (g + 1) * cout_g)
        for ky in range(kh):
            for kx in range(kw):
                y[:, :, outs] += _tap(xp, ky, kx, stride, ho, wo)[:, :, ins] @ wt[ky, kx, :, outs]
    return _epilogue(y, bias, act, residual)


def conv2d_depthwise(x, weight, bias=None, *, stride=1, padding=1, act=None, residual=None):
    h, w, c = x.shape
    kh, kw, cw = weight.shape
    assert cw == c
    ho = (h + 2 * padding - kh) // stride + 1
    wo = (w + 2 * padding - kw) // stride + 1
    xp = _padded(x, padding)
    wt = weight.astype(np.float64)
    y = np.zeros((ho, wo, c))
    for ky in range(kh):
        for kx in range(kw):
            y += _tap(xp, ky, kx, stride, ho, wo) * wt[ky, kx]
    return _epilogue(y, bias, act, residual)


def conv_transpose2x2(x, weight, bias=None, *, act=None):
    h, w, cin = x.shape
    cin_w, kh, kw, cout = weight.shape
    assert cin_w == cin and (kh, kw) == (2, 2)
    xf = x.astype(np.float64)
    wt = weight.astype(np.float64)
    y = np.zeros((2 * h, 2 * w, cout))
    for i in range(2):
        for j in range(2):
            # out[2y + i, 2x + j, co] = sum_ci x[y, x, ci] * w[ci, i, j, co]
            y[i::2, j::2] = xf @ wt[:, i, j]
    return _epilogue(y, bias, act, None)


# conv2d's subgroup variant computes the same convolution.
conv2d_subgroup = conv2d
