// # conv2d
//
// out = act(conv(x, w) + bias) + residual, channels-last, batch 1, as an implicit GEMM:
// M = Ho * Wo output pixels, N = Cout / groups output channels per group,
// K = kh * kw * Cin / groups, with K ordered (ky, kx, ci) so weight rows are contiguous.
// x (H, W, Cin); w (kh, kw, Cin / groups, Cout) (HWIO); bias (Cout); residual and out
// (Ho, Wo, Cout). Zero padding `pad` on every side, square `stride`; output channel co reads
// the input channels of its group g = co / (Cout / groups).
//
// Bindings: 0 x (read), 1 w (read), 2 bias (read), 3 residual (read), 4 out (read_write),
// 5 params (uniform).
//
// BLOCKED (needs Cout / groups % 4 == 0): one invocation computes 8 output pixels (in
// row-major order, so a block may wrap to the next row) x 16 output channels of one group in
// registers: per input channel it reads 8 input values and 4 vec4 of weights and does 32
// vec4 FMAs, four channels at a time when Cin / groups % 4 == 0. That is matmul.wgsl's 8 x 16
// register block (whose comments say why: no workgroup memory, spelled-out accumulators, and
// 16 columns because on lavapipe every load is a per-lane gather and the wider block does
// fewer gathers per FMA). Invocation t takes
// channel block t % col_blocks and pixel block t / col_blocks, so neighbouring lanes share
// input pixels and read neighbouring weights. A tap that falls into the padding reads a
// valid address and selects 0 instead, so nothing is read out of bounds.
// Otherwise (the simple path) invocation t computes output elements 4t .. 4t+3 (flat).
// Grid: grid_1d(invocations, WG), indexed as first + gid.x + gid.y * (num_workgroups.x * WG):
// a large convolution goes as several dispatches, each over a range of invocations.

//! include activation.wgsl

override WG: u32 = 64u;
override ACT: u32 = 0u;
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;
override BLOCKED: bool = true;

struct Params {
    h: u32, w: u32, cin: u32, cout: u32,
    ho: u32, wo: u32, kh: u32, kw: u32,
    stride: u32, pad: u32, cin_g: u32, cout_g: u32,
    // m = Ho * Wo; bpg = channel blocks of 16 per group; col_blocks = groups * bpg;
    // count = Ho * Wo * Cout output elements.
    m: u32, bpg: u32, col_blocks: u32, count: u32,
    // first: this dispatch's first invocation.
    first: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: Params;

//! include acc16.wgsl

// Where one output pixel meets one kernel tap: the x index of its first group channel, or
// ok = false in the padding (then at = 0, a harmless address whose value is discarded).
struct Tap { at: u32, ok: bool }

// Weight row at vec4 index `at`; `skip` holds the offsets of vec4s 1..3, 0 for those past
// the group's channels (they re-read vec4 0 and are never stored).
fn w_row(at: u32, skip: vec3<u32>) -> Acc {
    return Acc(wt[at], wt[at + skip.x], wt[at + skip.y], wt[at + skip.z]);
}

// The input position of kernel tap (0, 0) for output pixel m (m clamped to the last pixel:
// rows past the end are computed but never stored).
fn origin(m: u32) -> vec2<i32> {
    let mm = min(m, p.m - 1u);
    let oy = mm / p.wo;
    let ox = mm - oy * p.wo;
    return vec2<i32>(i32(oy * p.stride) - i32(p.pad), i32(ox * p.stride) - i32(p.pad));
}

fn tap(o: vec2<i32>, ky: u32, kx: u32, c0: u32) -> Tap {
    let iy = o.x + i32(ky);
    let ix = o.y + i32(kx);
    // Negative coordinates wrap to huge u32 values, so one comparison per axis suffices.
    let ok = u32(iy) < p.h && u32(ix) < p.w;
    return Tap(select(0u, (u32(iy) * p.w + u32(ix)) * p.cin + c0, ok), ok);
}

fn x4(t: Tap, ci: u32) -> vec4<f32> {
    let a = t.at + ci;
    return select(vec4<f32>(), vec4<f32>(x[a], x[a + 1u], x[a + 2u], x[a + 3u]), t.ok);
}

fn x1(t: Tap, ci: u32) -> f32 {
    return select(0.0, x[t.at + ci], t.ok);
}

fn epilogue(v: vec4<f32>, col4: u32, at: u32) -> vec4<f32> {
    var r = v;
    if (HAS_BIAS) {
        r += bias[col4];
    }
    r = vec4<f32>(activate(r.x, ACT), activate(r.y, ACT), activate(r.z, ACT), activate(r.w, ACT));
    if (HAS_RESIDUAL) {
        r += residual[at];
    }
    return r;
}

fn store(m: u32, col4: u32, n4: u32, acc: Acc) {
    if (m >= p.m) {
        return;
    }
    let at = m * (p.cout / 4u) + col4;
    out[at] = epilogue(acc.c0, col4, at);
    if (n4 > 1u) {
        out[at + 1u] = epilogue(acc.c1, col4 + 1u, at + 1u);
    }
    if (n4 > 2u) {
        out[at + 2u] = epilogue(acc.c2, col4 + 2u, at + 2u);
    }
    if (n4 > 3u) {
        out[at + 3u] = epilogue(acc.c3, col4 + 3u, at + 3u);
    }
}

fn blocked(t: u32) {
    let pb = t / p.col_blocks;
    let cb = t - pb * p.col_blocks;
    let m0 = pb * 8u;
    if (m0 >= p.m) {
        return;
    }
    let g = cb / p.bpg;
    let col_in_group = (cb - g * p.bpg) * 16u;
    let col4 = (g * p.cout_g + col_in_group) / 4u;
    // The last block of a group may hold only 4, 8 or 12 channels.
    let n4 = min((p.cout_g - col_in_group) / 4u, 4u);
    let skip = select(vec3<u32>(), vec3<u32>(1u, 2u, 3u), vec3<u32>(1u, 2u, 3u) < vec3<u32>(n4));
    let c0 = g * p.cin_g;
    let o0 = origin(m0);
    let o1 = origin(m0 + 1u);
    let o2 = origin(m0 + 2u);
    let o3 = origin(m0 + 3u);
    let o4 = origin(m0 + 4u);
    let o5 = origin(m0 + 5u);
    let o6 = origin(m0 + 6u);
    let o7 = origin(m0 + 7u);
    var acc0 = Acc(); var acc1 = Acc(); var acc2 = Acc(); var acc3 = Acc();
    var acc4 = Acc(); var acc5 = Acc(); var acc6 = Acc(); var acc7 = Acc();
    let cout4 = p.cout / 4u;
    let cin4 = p.cin_g & ~3u;
    // Weight row k = (ky * kw + kx) * cin_g + ci, so one pointer walks all of K in order.
    var w_at = col4;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let t0 = tap(o0, ky, kx, c0);
            let t1 = tap(o1, ky, kx, c0);
            let t2 = tap(o2, ky, kx, c0);
            let t3 = tap(o3, ky, kx, c0);
            let t4 = tap(o4, ky, kx, c0);
            let t5 = tap(o5, ky, kx, c0);
            let t6 = tap(o6, ky, kx, c0);
            let t7 = tap(o7, ky, kx, c0);
            var ci = 0u;
            for (; ci < cin4; ci += 4u) {
                let w0 = w_row(w_at, skip);
                let w1 = w_row(w_at + cout4, skip);
                let w2 = w_row(w_at + 2u * cout4, skip);
                let w3 = w_row(w_at + 3u * cout4, skip);
                acc0 = step4(acc0, x4(t0, ci), w0, w1, w2, w3);
                acc1 = step4(acc1, x4(t1, ci), w0, w1, w2, w3);
                acc2 = step4(acc2, x4(t2, ci), w0, w1, w2, w3);
                acc3 = step4(acc3, x4(t3, ci), w0, w1, w2, w3);
                acc4 = step4(acc4, x4(t4, ci), w0, w1, w2, w3);
                acc5 = step4(acc5, x4(t5, ci), w0, w1, w2, w3);
                acc6 = step4(acc6, x4(t6, ci), w0, w1, w2, w3);
                acc7 = step4(acc7, x4(t7, ci), w0, w1, w2, w3);
                w_at += 4u * cout4;
            }
            for (; ci < p.cin_g; ci++) {
                let w0 = w_row(w_at, skip);
                acc0 = step1(acc0, x1(t0, ci), w0);
                acc1 = step1(acc1, x1(t1, ci), w0);
                acc2 = step1(acc2, x1(t2, ci), w0);
                acc3 = step1(acc3, x1(t3, ci), w0);
                acc4 = step1(acc4, x1(t4, ci), w0);
                acc5 = step1(acc5, x1(t5, ci), w0);
                acc6 = step1(acc6, x1(t6, ci), w0);
                acc7 = step1(acc7, x1(t7, ci), w0);
                w_at += cout4;
            }
        }
    }
    store(m0, col4, n4, acc0);
    store(m0 + 1u, col4, n4, acc1);
    store(m0 + 2u, col4, n4, acc2);
    store(m0 + 3u, col4, n4, acc3);
    store(m0 + 4u, col4, n4, acc4);
    store(m0 + 5u, col4, n4, acc5);
    store(m0 + 6u, col4, n4, acc6);
    store(m0 + 7u, col4, n4, acc7);
}

// One output element, t = m * Cout + co, for the simple path (Cout / groups % 4 != 0),
// reading the vec4 bindings one component at a time.
fn element(t: u32) -> f32 {
    let m = t / p.cout;
    let co = t - m * p.cout;
    let g = co / p.cout_g;
    let c0 = g * p.cin_g;
    let o = origin(m);
    var acc = 0.0;
    var w_at = co;
    for (var ky = 0u; ky < p.kh; ky++) {
        for (var kx = 0u; kx < p.kw; kx++) {
            let tp = tap(o, ky, kx, c0);
            for (var ci = 0u; ci < p.cin_g; ci++) {
                acc = fma(x1(tp, ci), wt[w_at / 4u][w_at % 4u], acc);
                w_at += p.cout;
            }
        }
    }
    if (HAS_BIAS) {
        acc += bias[co / 4u][co % 4u];
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
    if (BLOCKED) {
        blocked(t);
    } else {
        simple(t);
    }
}
