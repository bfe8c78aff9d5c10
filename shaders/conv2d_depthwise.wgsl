// # conv2d_depthwise
//
// out[oy, ox, c] = act(bias[c] + sum_{ky, kx} x[oy * s - pad + ky, ox * s - pad + kx, c]
// * w[ky, kx, c]) + residual[oy, ox, c], channels-last, batch 1, zero padding `pad` on every
// side. x (H, W, C); w (kh, kw, C); bias (C); residual and out (Ho, Wo, C).
//
// Bindings: 0 x (read), 1 w (read), 2 bias (read), 3 residual (read), 4 out (read_write),
// 5 params (uniform).
//
// VEC4 (needs C % 4 == 0): one invocation computes 4 channels (a vec4) of 4 neighbouring
// output pixels of one row, loading each weight vec4 once for the 4 pixels and, at stride 1,
// each input vec4 of a kernel row once (kw + 3 loads instead of 4 * kw). Invocation t takes
// channel vec4 t % (C / 4), so neighbouring lanes read neighbouring memory, and pixel group
// t / (C / 4) (row-major over (Ho, ceil(Wo / 4))). Pixels past the end of the row are
// computed but not stored. A tap in the padding reads a valid address and selects 0
// instead, so nothing is read out of bounds. The kernel is bound by loads (each one a
// per-lane gather on lavapipe), not by bandwidth.
// Otherwise (the simple path, for C not a multiple of 4) invocation t computes output
// elements 4t .. 4t+3 (flat), reading the vec4 bindings one component at a time.
// Grid: grid_1d(invocations, WG), indexed as first + gid.x + gid.y * (num_workgroups.x * WG):
// a large convolution goes as several dispatches, each over a range of invocations.

//! include activation.wgsl

override WG: u32 = 64u;
override ACT: u32 = 0u;
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;
override VEC4: bool = true;

struct Params {
    h: u32, w: u32, c: u32, ho: u32,
    wo: u32, kh: u32, kw: u32, stride: u32,
    // groups = pixel groups of 4 per output row; count = output elements (simple path);
    // first = this dispatch's first invocation.
    pad: u32, groups: u32, count: u32, first: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: Params;

fn epilogue(v: vec4<f32>, c4: u32, at: u32) -> vec4<f32> {
    var r = v;
    if (HAS_BIAS) {
        r += bias[c4];
    }
    r = vec4<f32>(activate(r.x, ACT), activate(r.y, ACT), activate(r.z, ACT), activate(r.w, ACT));
    if (HAS_RESIDUAL) {
        r += residual[at];
    }
    return r;
}

// Input column of kernel column kx for output column ox; negative in the left padding.
fn col(ox: u32, kx: u32) -> i32 {
    return i32(min(ox, p.wo - 1u) * p.stride + kx) - i32(p.pad);
}

// x (as vec4 of channels) at row offset `row` (in pixels) and column ix, or 0 in the padding.
fn tap4(row: u32, row_ok: bool, ix: i32, c4: u32, c_4: u32) -> vec4<f32> {
    // A negative column wraps to a huge u32, so one comparison covers both sides.
    let ok = row_ok && u32(ix) < p.w;
    return select(vec4<f32>(), x[select(0u, (row + u32(ix)) * c_4 + c4, ok)], ok);
}

fn store4(oy: u32, ox: u32, c4: u32, c_4: u32, v: vec4<f32>) {
    if (ox < p.wo) {
        let at = (oy * p.wo + ox) * c_4 + c4;
        out[at] = epilogue(v, c4, at);
    }
}

fn vec4_path(t: u32) {
    let c_4 = p.c / 4u;
    let pg = t / c_4;
    let c4 = t - pg * c_4;
    let oy = pg / p.groups;
    if (oy >= p.ho) {
        return;
    }
    let ox0 = (pg - oy * p.groups) * 4u;
    var a0 = vec4<f32>(); var a1 = vec4<f32>(); var a2 = vec4<f32>(); var a3 = vec4<f32>();
    var w_at = c4;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.stride + ky) - i32(p.pad);
        let row_ok = u32(iy) < p.h;
        let row = select(0u, u32(iy) * p.w, row_ok);
        if (p.stride == 1u) {
            // Stride 1: pixel i at kernel column kx reads what pixel i + 1 read at kx - 1, so
            // the four input vec4 roll along and each kernel column loads one new one.
            let ix0 = i32(ox0) - i32(p.pad);
            var v0 = tap4(row, row_ok, ix0, c4, c_4);
            var v1 = tap4(row, row_ok, ix0 + 1i, c4, c_4);
            var v2 = tap4(row, row_ok, ix0 + 2i, c4, c_4);
            for (var kx = 0u; kx < p.kw; kx++) {
                let v3 = tap4(row, row_ok, ix0 + 3i + i32(kx), c4, c_4);
                let wv = wt[w_at];
                a0 = fma(v0, wv, a0);
                a1 = fma(v1, wv, a1);
                a2 = fma(v2, wv, a2);
                a3 = fma(v3, wv, a3);
                v0 = v1;
                v1 = v2;
                v2 = v3;
                w_at += c_4;
            }
        } else {
            for (var kx = 0u; kx < p.kw; kx++) {
                let wv = wt[w_at];
                a0 = fma(tap4(row, row_ok, col(ox0, kx), c4, c_4), wv, a0);
                a1 = fma(tap4(row, row_ok, col(ox0 + 1u, kx), c4, c_4), wv, a1);
                a2 = fma(tap4(row, row_ok, col(ox0 + 2u, kx), c4, c_4), wv, a2);
                a3 = fma(tap4(row, row_ok, col(ox0 + 3u, kx), c4, c_4), wv, a3);
                w_at += c_4;
            }
        }
    }
    store4(oy, ox0, c4, c_4, a0);
    store4(oy, ox0 + 1u, c4, c_4, a1);
    store4(oy, ox0 + 2u, c4, c_4, a2);
    store4(oy, ox0 + 3u, c4, c_4, a3);
}

// One output element, t = (oy * Wo + ox) * C + c, for the simple path (C % 4 != 0), reading
// the vec4 bindings one component at a time.
fn element(t: u32) -> f32 {
    let pix = t / p.c;
    let c = t - pix * p.c;
    let oy = pix / p.wo;
    let ox = pix - oy * p.wo;
    var acc = 0.0;
    for (var ky = 0u; ky < p.kh; ky++) {
        let iy = i32(oy * p.stride + ky) - i32(p.pad);
        for (var kx = 0u; kx < p.kw; kx++) {
            let ix = i32(ox * p.stride + kx) - i32(p.pad);
            if (u32(iy) < p.h && u32(ix) < p.w) {
                let xi = (u32(iy) * p.w + u32(ix)) * p.c + c;
                let wi = (ky * p.kw + kx) * p.c + c;
                acc = fma(x[xi / 4u][xi % 4u], wt[wi / 4u][wi % 4u], acc);
            }
        }
    }
    if (HAS_BIAS) {
        acc += bias[c / 4u][c % 4u];
    }
    acc = activate(acc, ACT);
    if (HAS_RESIDUAL) {
        acc += residual[t / 4u][t % 4u];
    }
    return acc;
}

//! include conv_simple.wgsl

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = p.first + gid.x + gid.y * (nwg.x * WG);
    if (VEC4) {
        vec4_path(t);
    } else {
        simple(t);
    }
}
