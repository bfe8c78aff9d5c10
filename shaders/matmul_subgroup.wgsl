// # matmul_subgroup
//
// The same product as `matmul` (C[b] = act(alpha * A[b] @ B[b] + bias) + residual[b], f32,
// row-major, K % 4 == 0 and N % 4 == 0, batch strides in elements, 0 for a shared operand),
// for adapters with subgroups. Like `matmul`, one invocation keeps an 8 x 16 block of C in
// registers; but the invocations of a workgroup share their 16 columns and differ in rows,
// so the slab of B they all need (4 rows of K x 16 columns: 16 vec4) is loaded once per
// subgroup, not once per invocation: lane l loads column vec4 l % 4 of the 4 rows, and
// `subgroupBroadcast` hands each vec4 to all lanes (4 is WGSL's smallest subgroup size, so
// this holds on every adapter). That is 4 loads of B per step instead of 16: on lavapipe,
// where every storage load is a per-lane gather, 2-3x faster than `matmul`.
// naga allows the subgroup built-ins only in one-dimensional workgroups: the workgroup is one
// row of WG invocations.
//
// Bindings: 0 a (read), 1 b (read), 2 bias (read), 3 residual (read), 4 c (read_write),
// 5 params (uniform).
//
// One invocation: rows row0 + 8 * (WG * wid.y + lid) .. + 7, columns 16 * wid.x .. + 15
// (stored where they lie inside C; rows past M re-read the last row and store nothing, so
// that every lane reaches every broadcast).
// Grid: (ceil(N / 16), ceil(M / (8 * WG)), batch), or a range of its rows of workgroups
// starting at matrix row `row0`.

enable subgroups;

//! include activation.wgsl

override WG: u32 = 64u;
override ACT: u32 = 0u;
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

struct Params {
    m: u32, n: u32, k: u32, alpha: f32,
    // row0: the first row of C this dispatch computes (a large product goes as several).
    batch_a: u32, batch_b: u32, batch_c: u32, row0: u32,
}

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: Params;

//! include acc16.wgsl

// Four rows of B (k .. k+3), 16 columns each.
struct Slab { r0: Acc, r1: Acc, r2: Acc, r3: Acc }

// One row of the slab: the vec4 each of lanes 0-3 loaded, to every lane.
fn share(v: vec4<f32>) -> Acc {
    return Acc(subgroupBroadcast(v, 0u), subgroupBroadcast(v, 1u), subgroupBroadcast(v, 2u),
               subgroupBroadcast(v, 3u));
}

fn step(acc: Acc, av: vec4<f32>, s: Slab) -> Acc {
    return step4(acc, av, s.r0, s.r1, s.r2, s.r3);
}

fn epilogue(v: vec4<f32>, col4: u32, at: u32) -> vec4<f32> {
    var r = p.alpha * v;
    if (HAS_BIAS) {
        r += bias[col4];
    }
    r = vec4<f32>(activate(r.x, ACT), activate(r.y, ACT), activate(r.z, ACT), activate(r.w, ACT));
    if (HAS_RESIDUAL) {
        r += residual[at];
    }
    return r;
}

fn store_row(row: u32, col4: u32, n4: u32, base: u32, acc: Acc) {
    if (row >= p.m || col4 >= n4) {
        return;
    }
    let at = base + row * n4 + col4;
    c[at] = epilogue(acc.c0, col4, at);
    if (col4 + 1u < n4) { c[at + 1u] = epilogue(acc.c1, col4 + 1u, at + 1u); }
    if (col4 + 2u < n4) { c[at + 2u] = epilogue(acc.c2, col4 + 2u, at + 2u); }
    if (col4 + 3u < n4) { c[at + 3u] = epilogue(acc.c3, col4 + 3u, at + 3u); }
}

@compute @workgroup_size(WG, 1, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let row0 = p.row0 + (wid.y * WG + lid) * 8u;
    let col4 = wid.x * 4u;
    // This lane's column of the slab; columns past N re-read the last one (never stored).
    let mine = min(col4 + lane % 4u, n4 - 1u);
    let last = p.m - 1u;
    let a_base = wid.z * p.batch_a / 4u;
    let r0 = a_base + min(row0, last) * k4;
    let r1 = a_base + min(row0 + 1u, last) * k4;
    let r2 = a_base + min(row0 + 2u, last) * k4;
    let r3 = a_base + min(row0 + 3u, last) * k4;
    let r4 = a_base + min(row0 + 4u, last) * k4;
    let r5 = a_base + min(row0 + 5u, last) * k4;
    let r6 = a_base + min(row0 + 6u, last) * k4;
    let r7 = a_base + min(row0 + 7u, last) * k4;
    var acc0 = Acc(); var acc1 = Acc(); var acc2 = Acc(); var acc3 = Acc();
    var acc4 = Acc(); var acc5 = Acc(); var acc6 = Acc(); var acc7 = Acc();
    var b_at = wid.z * p.batch_b / 4u + mine;
    for (var kk = 0u; kk < k4; kk++) {
        let s = Slab(share(b[b_at]), share(b[b_at + n4]), share(b[b_at + 2u * n4]),
                     share(b[b_at + 3u * n4]));
        acc0 = step(acc0, a[r0 + kk], s);
        acc1 = step(acc1, a[r1 + kk], s);
        acc2 = step(acc2, a[r2 + kk], s);
        acc3 = step(acc3, a[r3 + kk], s);
        acc4 = step(acc4, a[r4 + kk], s);
        acc5 = step(acc5, a[r5 + kk], s);
        acc6 = step(acc6, a[r6 + kk], s);
        acc7 = step(acc7, a[r7 + kk], s);
        b_at += 4u * n4;
    }
    let c_base = wid.z * p.batch_c / 4u;
    store_row(row0, col4, n4, c_base, acc0);
    store_row(row0 + 1u, col4, n4, c_base, acc1);
    store_row(row0 + 2u, col4, n4, c_base, acc2);
    store_row(row0 + 3u, col4, n4, c_base, acc3);
    store_row(row0 + 4u, col4, n4, c_base, acc4);
    store_row(row0 + 5u, col4, n4, c_base, acc5);
    store_row(row0 + 6u, col4, n4, c_base, acc6);
    store_row(row0 + 7u, col4, n4, c_base, acc7);
}
