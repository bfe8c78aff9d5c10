// # conv2d_subgroup
//
// The same convolution as `conv2d`'s blocked path (out = act(conv(x, w) + bias) + residual,
// channels-last, batch 1, an implicit GEMM with K ordered (ky, kx, ci); needs Cout / groups %
// 4 == 0), for adapters with subgroups, with the trick of `matmul_subgroup`: the invocations
// of a workgroup share one block of 16 output channels and differ in their 8 output pixels,
// so the weights they all need (4 vec4 per input channel) are loaded once per subgroup: lane l
// loads vec4 l % 4 and `subgroupBroadcast` hands the four round (4 is WGSL's smallest
// subgroup size). Pixel blocks past the end compute the last pixel again and store nothing,
// so every lane reaches every broadcast.
// x (H, W, Cin); w (kh, kw, Cin / groups, Cout) (HWIO); bias (Cout); residual and out
// (Ho, Wo, Cout); zero padding `pad` on every side, square `stride`.
//
// Bindings: 0 x (read), 1 w (read), 2 bias (read), 3 residual (read), 4 out (read_write),
// 5 params (uniform).
//
// Invocation t = WG * workgroup + lane: channel block workgroup % col_blocks, pixel block
// WG * (workgroup / col_blocks) + lane; one invocation computes 8 output pixels x 16 channels
// of one group in registers, as `conv2d` does.
// Grid: grid_1d(ceil(pixel blocks / WG) * WG * col_blocks, WG), indexed as first + gid.x +
// gid.y * (num_workgroups.x * WG): a large convolution goes as several dispatches, each over
// a range of whole workgroups.

enable subgroups;

//! include activation.wgsl

override WG: u32 = 64u;
override ACT: u32 = 0u;
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

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

// Weight row at vec4 index `at`, 16 channels: each lane loads only vec4 `mine` (its lane % 4,
// or 0 past the group's channels: re-read and never stored) and the subgroup shares the four.
fn w_row(at: u32, mine: u32) -> Acc {
    let v = wt[at + mine];
    return Acc(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
               subgroupBroadcast(v, 3u));
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

fn blocked(t: u32, lane: u32) {
    let wg = t / WG;
    let cb = wg % p.col_blocks;
    let pb = (wg / p.col_blocks) * WG + (t - wg * WG);
    let m0 = pb * 8u;
    let g = cb / p.bpg;
    let col_in_group = (cb - g * p.bpg) * 16u;
    let col4 = (g * p.cout_g + col_in_group) / 4u;
    // The last block of a group may hold only 4, 8 or 12 channels.
    let n4 = min((p.cout_g - col_in_group) / 4u, 4u);
    let mine = select(0u, lane % 4u, lane % 4u < n4);
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
                let w0 = w_row(w_at, mine);
                let w1 = w_row(w_at + cout4, mine);
                let w2 = w_row(w_at + 2u * cout4, mine);
                let w3 = w_row(w_at + 3u * cout4, mine);
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
                let w0 = w_row(w_at, mine);
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

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>,
        @builtin(subgroup_invocation_id) lane: u32) {
    blocked(p.first + gid.x + gid.y * (nwg.x * WG), lane);
}
