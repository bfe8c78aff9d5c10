// # conv_transpose2x2
//
// ConvTranspose2d with kernel 2, stride 2, no padding, channels-last, batch 1:
// out[2y + i, 2x + j, co] = act(bias[co] + sum_ci x[y, x, ci] * w[ci, i, j, co]).
// x (H, W, Cin); w (Cin, 2, 2, Cout); bias (Cout); out (2H, 2W, Cout).
// Each input pixel feeds its own 2 x 2 output patch, so this is a GEMM, M = H * W pixels,
// K = Cin, N = 4 * Cout columns n = (i * 2 + j) * Cout + co (w is (K, N) row-major as it
// stands), whose result scatters into the output.
//
// Bindings: 0 x (read), 1 w (read), 2 bias (read), 3 out (read_write), 4 params (uniform).
//
// BLOCKED (needs Cout % 4 == 0, so no vec4 of columns straddles two (i, j), and the N / 4 =
// Cout column vec4s make whole blocks of 4): one invocation computes 8 input pixels x 16
// columns (4 vec4, each with its own output address) in registers, like conv2d.wgsl (whose
// comments say why), four input channels at a time when Cin % 4 == 0. Invocation t takes
// column block t % col_blocks and pixel block t / col_blocks. Rows past M re-read the last
// row and are not stored.
// Otherwise (the simple path) invocation t computes output elements 4t .. 4t+3 (flat).
// Grid: grid_1d(invocations, WG), indexed as gid.x + gid.y * (num_workgroups.x * WG) + t0,
// t0 the first invocation of this dispatch (a large one, e.g. a batch of prompts' upscaling
// stacked along H, goes as several dispatches over ranges of invocations).

//! include activation.wgsl

override WG: u32 = 64u;
override ACT: u32 = 0u;
override HAS_BIAS: bool = false;
override BLOCKED: bool = true;

struct Params {
    h: u32, w: u32, cin: u32, cout: u32,
    // m = H * W; col_blocks = ceil(Cout / 4) blocks of 16 columns; count = output elements.
    m: u32, col_blocks: u32, count: u32, t0: u32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wt: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

//! include acc16.wgsl

fn w_row(at: u32) -> Acc {
    return Acc(wt[at], wt[at + 1u], wt[at + 2u], wt[at + 3u]);
}

fn x4(at: u32) -> vec4<f32> {
    return vec4<f32>(x[at], x[at + 1u], x[at + 2u], x[at + 3u]);
}

// Output vec4 index of column vec4 q (columns 4q .. 4q+3) for input pixel m.
fn out_at(m: u32, q: u32) -> u32 {
    let y = m / p.w;
    let xx = m - y * p.w;
    let cout4 = p.cout / 4u;
    let ij = q / cout4;
    let i = ij / 2u;
    let j = ij - 2u * i;
    return ((2u * y + i) * (2u * p.w) + 2u * xx + j) * cout4 + (q - ij * cout4);
}

fn epilogue(v: vec4<f32>, q: u32) -> vec4<f32> {
    var r = v;
    if (HAS_BIAS) {
        r += bias[q % (p.cout / 4u)];
    }
    return vec4<f32>(activate(r.x, ACT), activate(r.y, ACT), activate(r.z, ACT), activate(r.w, ACT));
}

fn store(m: u32, q: u32, acc: Acc) {
    if (m >= p.m) {
        return;
    }
    out[out_at(m, q)] = epilogue(acc.c0, q);
    out[out_at(m, q + 1u)] = epilogue(acc.c1, q + 1u);
    out[out_at(m, q + 2u)] = epilogue(acc.c2, q + 2u);
    out[out_at(m, q + 3u)] = epilogue(acc.c3, q + 3u);
}

fn blocked(t: u32) {
    let pb = t / p.col_blocks;
    let q = (t - pb * p.col_blocks) * 4u;
    let m0 = pb * 8u;
    if (m0 >= p.m) {
        return;
    }
    // A weight row is N / 4 = Cout vec4s long.
    let cols4 = p.cout;
    let last = p.m - 1u;
    let r0 = min(m0, last) * p.cin;
    let r1 = min(m0 + 1u, last) * p.cin;
    let r2 = min(m0 + 2u, last) * p.cin;
    let r3 = min(m0 + 3u, last) * p.cin;
    let r4 = min(m0 + 4u, last) * p.cin;
    let r5 = min(m0 + 5u, last) * p.cin;
    let r6 = min(m0 + 6u, last) * p.cin;
    let r7 = min(m0 + 7u, last) * p.cin;
    var acc0 = Acc(); var acc1 = Acc(); var acc2 = Acc(); var acc3 = Acc();
    var acc4 = Acc(); var acc5 = Acc(); var acc6 = Acc(); var acc7 = Acc();
    var w_at = q;
    var ci = 0u;
    for (; ci + 4u <= p.cin; ci += 4u) {
        let w0 = w_row(w_at);
        let w1 = w_row(w_at + cols4);
        let w2 = w_row(w_at + 2u * cols4);
        let w3 = w_row(w_at + 3u * cols4);
        acc0 = step4(acc0, x4(r0 + ci), w0, w1, w2, w3);
        acc1 = step4(acc1, x4(r1 + ci), w0, w1, w2, w3);
        acc2 = step4(acc2, x4(r2 + ci), w0, w1, w2, w3);
        acc3 = step4(acc3, x4(r3 + ci), w0, w1, w2, w3);
        acc4 = step4(acc4, x4(r4 + ci), w0, w1, w2, w3);
        acc5 = step4(acc5, x4(r5 + ci), w0, w1, w2, w3);
        acc6 = step4(acc6, x4(r6 + ci), w0, w1, w2, w3);
        acc7 = step4(acc7, x4(r7 + ci), w0, w1, w2, w3);
        w_at += 4u * cols4;
    }
    for (; ci < p.cin; ci++) {
        let w0 = w_row(w_at);
        acc0 = step1(acc0, x[r0 + ci], w0);
        acc1 = step1(acc1, x[r1 + ci], w0);
        acc2 = step1(acc2, x[r2 + ci], w0);
        acc3 = step1(acc3, x[r3 + ci], w0);
        acc4 = step1(acc4, x[r4 + ci], w0);
        acc5 = step1(acc5, x[r5 + ci], w0);
        acc6 = step1(acc6, x[r6 + ci], w0);
        acc7 = step1(acc7, x[r7 + ci], w0);
        w_at += cols4;
    }
    store(m0, q, acc0);
    store(m0 + 1u, q, acc1);
    store(m0 + 2u, q, acc2);
    store(m0 + 3u, q, acc3);
    store(m0 + 4u, q, acc4);
    store(m0 + 5u, q, acc5);
    store(m0 + 6u, q, acc6);
    store(m0 + 7u, q, acc7);
}

// One output element (flat index t) for the simple path (Cout % 4 != 0), reading the vec4
// bindings one component at a time.
fn element(t: u32) -> f32 {
    let pix = t / p.cout;
    let co = t - pix * p.cout;
    let oy = pix / (2u * p.w);
    let ox = pix - oy * (2u * p.w);
    let m = (oy / 2u) * p.w + ox / 2u;
    // Column n = (i * 2 + j) * Cout + co of the (Cin, 4 * Cout) weight matrix.
    var w_at = ((oy % 2u) * 2u + ox % 2u) * p.cout + co;
    var acc = 0.0;
    for (var ci = 0u; ci < p.cin; ci++) {
        acc = fma(x[m * p.cin + ci], wt[w_at / 4u][w_at % 4u], acc);
        w_at += 4u * p.cout;
    }
    if (HAS_BIAS) {
        acc += bias[co / 4u][co % 4u];
    }
    return activate(acc, ACT);
}

//! include conv_simple.wgsl

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = gid.x + gid.y * (nwg.x * WG) + p.t0;
    if (BLOCKED) {
        blocked(t);
    } else {
        simple(t);
    }
}
