// # matmul_subgroup
//
// The same product as `matmul` (C[b] = act(alpha * A[b] @ B[b] + bias) + residual[b], f32,
// row-major, K % 4 == 0 and N % 4 == 0, batch strides in elements, 0 for a shared operand),
// for adapters with subgroups. Like `matmul`, one invocation keeps an 8 x 16 block of C in
// registers; but the 8 rows of A that every invocation of a workgroup row needs are loaded
// once per subgroup, not once per invocation: lane l loads rows l % 4 and 4 + l % 4, and
// `subgroupBroadcast` hands each row to all lanes (4 is WGSL's smallest subgroup size, so
// this holds on every adapter). The workgroup is one row of WG invocations, so all lanes of a
// subgroup share their rows whatever its size (up to WG).
//
// Bindings: 0 a (read), 1 b (read), 2 bias (read), 3 residual (read), 4 c (read_write),
// 5 params (uniform).
//
// One invocation: rows row0 + 8 * gid.y .. + 7, columns 16 * gid.x .. + 15 (stored where
// they lie inside C; lanes past N compute the last column again and store nothing, so that
// every lane reaches every broadcast).
// Grid: (ceil(N / (16 * WG)), ceil(M / 8), batch), or a range of its rows of workgroups
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

fn load_row(at: u32, step: vec3<u32>) -> Acc {
    return Acc(b[at], b[at + step.x], b[at + step.y], b[at + step.z]);
}

fn load_slab(at: u32, n4: u32, step: vec3<u32>) -> Slab {
    return Slab(load_row(at, step), load_row(at + n4, step), load_row(at + 2u * n4, step),
                load_row(at + 3u * n4, step));
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
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(subgroup_invocation_id) lane: u32,
) {
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let row0 = p.row0 + gid.y * 8u;
    let col4 = gid.x * 4u;
    let last4 = n4 - 1u;
    let c4 = min(col4, last4);
    let step3 = vec3<u32>(min(c4 + 1u, last4), min(c4 + 2u, last4), min(c4 + 3u, last4)) - c4;
    // Rows past M re-read the last row; their results are never stored.
    let last = p.m - 1u;
    let a_base = gid.z * p.batch_a / 4u;
    let lo = a_base + min(row0 + lane % 4u, last) * k4;
    let hi = a_base + min(row0 + 4u + lane % 4u, last) * k4;
    var acc0 = Acc(); var acc1 = Acc(); var acc2 = Acc(); var acc3 = Acc();
    var acc4 = Acc(); var acc5 = Acc(); var acc6 = Acc(); var acc7 = Acc();
    var b_at = gid.z * p.batch_b / 4u + c4;
    for (var kk = 0u; kk < k4; kk++) {
        let s = load_slab(b_at, n4, step3);
        let a_lo = a[lo + kk];
        let a_hi = a[hi + kk];
        acc0 = step(acc0, subgroupBroadcast(a_lo, 0u), s);
        acc1 = step(acc1, subgroupBroadcast(a_lo, 1u), s);
        acc2 = step(acc2, subgroupBroadcast(a_lo, 2u), s);
        acc3 = step(acc3, subgroupBroadcast(a_lo, 3u), s);
        acc4 = step(acc4, subgroupBroadcast(a_hi, 0u), s);
        acc5 = step(acc5, subgroupBroadcast(a_hi, 1u), s);
        acc6 = step(acc6, subgroupBroadcast(a_hi, 2u), s);
        acc7 = step(acc7, subgroupBroadcast(a_hi, 3u), s);
        b_at += 4u * n4;
    }
    let c_base = gid.z * p.batch_c / 4u;
    store_row(row0, col4, n4, c_base, acc0);
    store_row(row0 + 1u, col4, n4, c_base, acc1);
    store_row(row0 + 2u, col4, n4, c_base, acc2);
    store_row(row0 + 3u, col4, n4, c_base, acc3);
    store_row(row0 + 4u, col4, n4, c_base, acc4);
    store_row(row0 + 5u, col4, n4, c_base, acc5);
    store_row(row0 + 6u, col4, n4, c_base, acc6);
    store_row(row0 + 7u, col4, n4, c_base, acc7);
}
