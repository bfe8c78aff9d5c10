// # attention
//
// Multi-head scaled dot-product attention, out = softmax(scale * Q K^T + bias) V for every
// (batch, head), reading Q, K and V in place from row-major (B, N, C) tensors, so neither a
// packed TinyViT qkv nor SAM's channel-split heads needs a re-layout kernel. Head h of an
// operand is the columns [off + h * head, off + h * head + dim) of each of its rows, with
// dim = KD for q and k, DV for v. Every stride and offset in Params is in vec4 units (the op
// checks that channels, offsets and strides are multiples of 4). bias (heads, Nq, Nk) is
// shared by the batch. out is (B, Nq, heads * DV) with head h in columns [h * DV, (h+1) * DV).
//
// Bindings: 0 q (read), 1 k (read), 2 v (read), 3 bias (read), 4 out (read_write),
// 5 params (uniform). q, k and v may be the same tensor.
//
// One invocation computes ROWS (1..8) consecutive query rows of one head of one batch in a
// single pass over the keys, with an online softmax per row: running max m, running sum l of
// exp(s - m) and the DV accumulators, all rescaled by exp(m_old - m_new) at every key
// (branch-free: as fast as rescaling only when the max grows, and no divergence). Scores in
// f32. Each key's K and V rows are loaded once for all ROWS queries, which is what pays on
// CPU adapters (lavapipe: 8 rows run ~3x faster than 1). Query rows and accumulators are
// spelled out as 8 vec4 each (KD, DV <= 32, multiples of 4, as override constants) and the
// rows as r0..r7: loop-indexed local arrays are spilled to memory on LLVM adapters (see
// matmul.wgsl). Grid: (ceil(Nq / (WG * ROWS)), heads, B), or a range of the batches from b0.

override WG: u32 = 8u;
override ROWS: u32 = 8u;
override KD: u32 = 32u;
override DV: u32 = 32u;
override HAS_BIAS: bool = false;

struct Params {
    nq: u32, nk: u32, heads: u32, scale: f32,
    q_batch: u32, q_row: u32, q_off: u32, q_head: u32,
    k_batch: u32, k_row: u32, k_off: u32, k_head: u32,
    v_batch: u32, v_row: u32, v_off: u32, v_head: u32,
    // b0: this dispatch's first batch (a long attention goes as several dispatches).
    b0: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: Params;

// Up to 32 features of one head; lanes past KD (or DV) stay zero and are never touched.
struct F32x32 {
    a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32>,
    a4: vec4<f32>, a5: vec4<f32>, a6: vec4<f32>, a7: vec4<f32>,
}

fn load_q(at: u32, s: f32) -> F32x32 {
    var r = F32x32();
    r.a0 = s * q[at];
    if (KD > 4u) { r.a1 = s * q[at + 1u]; }
    if (KD > 8u) { r.a2 = s * q[at + 2u]; }
    if (KD > 12u) { r.a3 = s * q[at + 3u]; }
    if (KD > 16u) { r.a4 = s * q[at + 4u]; }
    if (KD > 20u) { r.a5 = s * q[at + 5u]; }
    if (KD > 24u) { r.a6 = s * q[at + 6u]; }
    if (KD > 28u) { r.a7 = s * q[at + 7u]; }
    return r;
}

// q . k for the key row starting at k[at].
fn score(qs: F32x32, at: u32) -> f32 {
    var s = dot(qs.a0, k[at]);
    if (KD > 4u) { s += dot(qs.a1, k[at + 1u]); }
    if (KD > 8u) { s += dot(qs.a2, k[at + 2u]); }
    if (KD > 12u) { s += dot(qs.a3, k[at + 3u]); }
    if (KD > 16u) { s += dot(qs.a4, k[at + 4u]); }
    if (KD > 20u) { s += dot(qs.a5, k[at + 5u]); }
    if (KD > 24u) { s += dot(qs.a6, k[at + 6u]); }
    if (KD > 28u) { s += dot(qs.a7, k[at + 7u]); }
    return s;
}

// acc * c + e * v[at ..]: c rescales the old terms to a new running max, e weighs the new key.
fn accumulate(acc: F32x32, c: f32, e: f32, at: u32) -> F32x32 {
    var r = F32x32();
    r.a0 = fma(vec4<f32>(e), v[at], c * acc.a0);
    if (DV > 4u) { r.a1 = fma(vec4<f32>(e), v[at + 1u], c * acc.a1); }
    if (DV > 8u) { r.a2 = fma(vec4<f32>(e), v[at + 2u], c * acc.a2); }
    if (DV > 12u) { r.a3 = fma(vec4<f32>(e), v[at + 3u], c * acc.a3); }
    if (DV > 16u) { r.a4 = fma(vec4<f32>(e), v[at + 4u], c * acc.a4); }
    if (DV > 20u) { r.a5 = fma(vec4<f32>(e), v[at + 5u], c * acc.a5); }
    if (DV > 24u) { r.a6 = fma(vec4<f32>(e), v[at + 6u], c * acc.a6); }
    if (DV > 28u) { r.a7 = fma(vec4<f32>(e), v[at + 7u], c * acc.a7); }
    return r;
}

// One query row in flight: the scaled query, its bias row, and the online-softmax state.
struct Query {
    qs: F32x32,
    bias_at: u32,
    m: f32,
    l: f32,
    acc: F32x32,
}

// The state after key 0, which starts the running max (no -inf sentinel needed).
fn start(q_at: u32, bias_at: u32, k_at: u32, v_at: u32) -> Query {
    let qs = load_q(q_at, p.scale);
    var s = score(qs, k_at);
    if (HAS_BIAS) {
        s += bias[bias_at];
    }
    return Query(qs, bias_at, s, 1.0, accumulate(F32x32(), 0.0, 1.0, v_at));
}

// Key j, whose K and V rows start at k_at and v_at.
fn step(r: Query, j: u32, k_at: u32, v_at: u32) -> Query {
    var s = score(r.qs, k_at);
    if (HAS_BIAS) {
        s += bias[r.bias_at + j];
    }
    let m = max(r.m, s);
    let c = exp(r.m - m);
    let e = exp(s - m);
    return Query(r.qs, r.bias_at, m, fma(r.l, c, e), accumulate(r.acc, c, e, v_at));
}

fn store(at: u32, r: Query) {
    let inv = 1.0 / r.l;
    out[at] = inv * r.acc.a0;
    if (DV > 4u) { out[at + 1u] = inv * r.acc.a1; }
    if (DV > 8u) { out[at + 2u] = inv * r.acc.a2; }
    if (DV > 12u) { out[at + 3u] = inv * r.acc.a3; }
    if (DV > 16u) { out[at + 4u] = inv * r.acc.a4; }
    if (DV > 20u) { out[at + 5u] = inv * r.acc.a5; }
    if (DV > 24u) { out[at + 6u] = inv * r.acc.a6; }
    if (DV > 28u) { out[at + 7u] = inv * r.acc.a7; }
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i0 = gid.x * ROWS;
    if (i0 >= p.nq) {
        return;
    }
    let h = gid.y;
    let b = gid.z + p.b0;
    let q_at = b * p.q_batch + p.q_off + h * p.q_head;
    var k_at = b * p.k_batch + p.k_off + h * p.k_head;
    var v_at = b * p.v_batch + p.v_off + h * p.v_head;
    // Rows past Nq repeat the last row: computed, never stored.
    let last = p.nq - 1u;
    let i1 = min(i0 + 1u, last);
    let i2 = min(i0 + 2u, last);
    let i3 = min(i0 + 3u, last);
    let i4 = min(i0 + 4u, last);
    let i5 = min(i0 + 5u, last);
    let i6 = min(i0 + 6u, last);
    let i7 = min(i0 + 7u, last);
    let bias_h = h * p.nq;
    var r0 = start(q_at + i0 * p.q_row, (bias_h + i0) * p.nk, k_at, v_at);
    var r1 = Query(); var r2 = Query(); var r3 = Query();
    var r4 = Query(); var r5 = Query(); var r6 = Query(); var r7 = Query();
    if (ROWS > 1u) { r1 = start(q_at + i1 * p.q_row, (bias_h + i1) * p.nk, k_at, v_at); }
    if (ROWS > 2u) { r2 = start(q_at + i2 * p.q_row, (bias_h + i2) * p.nk, k_at, v_at); }
    if (ROWS > 3u) { r3 = start(q_at + i3 * p.q_row, (bias_h + i3) * p.nk, k_at, v_at); }
    if (ROWS > 4u) { r4 = start(q_at + i4 * p.q_row, (bias_h + i4) * p.nk, k_at, v_at); }
    if (ROWS > 5u) { r5 = start(q_at + i5 * p.q_row, (bias_h + i5) * p.nk, k_at, v_at); }
    if (ROWS > 6u) { r6 = start(q_at + i6 * p.q_row, (bias_h + i6) * p.nk, k_at, v_at); }
    if (ROWS > 7u) { r7 = start(q_at + i7 * p.q_row, (bias_h + i7) * p.nk, k_at, v_at); }
    for (var j = 1u; j < p.nk; j++) {
        k_at += p.k_row;
        v_at += p.v_row;
        r0 = step(r0, j, k_at, v_at);
        if (ROWS > 1u) { r1 = step(r1, j, k_at, v_at); }
        if (ROWS > 2u) { r2 = step(r2, j, k_at, v_at); }
        if (ROWS > 3u) { r3 = step(r3, j, k_at, v_at); }
        if (ROWS > 4u) { r4 = step(r4, j, k_at, v_at); }
        if (ROWS > 5u) { r5 = step(r5, j, k_at, v_at); }
        if (ROWS > 6u) { r6 = step(r6, j, k_at, v_at); }
        if (ROWS > 7u) { r7 = step(r7, j, k_at, v_at); }
    }
    let out_row = p.heads * (DV / 4u);
    let out_at = (b * p.nq + i0) * out_row + h * (DV / 4u);
    store(out_at, r0);
    if (ROWS > 1u && i0 + 1u < p.nq) { store(out_at + out_row, r1); }
    if (ROWS > 2u && i0 + 2u < p.nq) { store(out_at + 2u * out_row, r2); }
    if (ROWS > 3u && i0 + 3u < p.nq) { store(out_at + 3u * out_row, r3); }
    if (ROWS > 4u && i0 + 4u < p.nq) { store(out_at + 4u * out_row, r4); }
    if (ROWS > 5u && i0 + 5u < p.nq) { store(out_at + 5u * out_row, r5); }
    if (ROWS > 6u && i0 + 6u < p.nq) { store(out_at + 6u * out_row, r6); }
    if (ROWS > 7u && i0 + 7u < p.nq) { store(out_at + 7u * out_row, r7); }
}
