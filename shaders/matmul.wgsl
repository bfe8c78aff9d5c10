// # matmul (fast path)
//
// C[b] = act(alpha * A[b] @ B[b] + bias) + residual[b], f32, row-major, with A (M, K),
// B (K, N), bias (N), residual and C (M, N). Needs K % 4 == 0 and N % 4 == 0 (every linear
// layer of MobileSAM); `matmul_strided` serves other shapes and transposed operands.
// Batch strides are in elements and may be 0 (a weight shared by the batch).
//
// Bindings: 0 a (read), 1 b (read), 2 bias (read), 3 residual (read), 4 c (read_write),
// 5 params (uniform).
//
// One invocation computes an 8 x 16 block of C in registers: per step of 4 along K it loads
// 8 vec4 of A and 16 vec4 of B and does 128 vec4 FMAs (16 columns measured 1.1-1.3x faster
// than 8 on lavapipe at MobileSAM's shapes, where every storage load is a per-lane gather). No workgroup memory: barriers cost a
// lot on CPU adapters (lavapipe, SwiftShader), and register blocking is what they reward.
// The 8 rows are spelled out (no loop-indexed arrays), which keeps the accumulators in
// registers on LLVM-based adapters (3-4x faster on lavapipe than an indexed array).
// Grid: (ceil(N / (16 * WG_X)), ceil(M / (8 * WG_Y)), batch), or a range of its rows of
// workgroups starting at matrix row `row0`. The variants `matmul_tiled` (workgroup memory)
// and `matmul_subgroup` compute the same with the same bindings and Params
// (sandseg.ops.variants chooses among them by measurement).

//! include activation.wgsl

override WG_X: u32 = 16u;
override WG_Y: u32 = 4u;
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
    if (row >= p.m) {
        return;
    }
    let at = base + row * n4 + col4;
    c[at] = epilogue(acc.c0, col4, at);
    if (col4 + 1u < n4) { c[at + 1u] = epilogue(acc.c1, col4 + 1u, at + 1u); }
    if (col4 + 2u < n4) { c[at + 2u] = epilogue(acc.c2, col4 + 2u, at + 2u); }
    if (col4 + 3u < n4) { c[at + 3u] = epilogue(acc.c3, col4 + 3u, at + 3u); }
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let row0 = p.row0 + gid.y * 8u;
    let col4 = gid.x * 4u;
    if (row0 >= p.m || col4 >= n4) {
        return;
    }
    // Accs past M re-read the last row and columns past N re-read the last column; their
    // results are never stored.
    let last4 = n4 - 1u;
    let step3 = vec3<u32>(min(col4 + 1u, last4), min(col4 + 2u, last4), min(col4 + 3u, last4)) - col4;
    let last = p.m - 1u;
    let a_base = gid.z * p.batch_a / 4u;
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
    var b_at = gid.z * p.batch_b / 4u + col4;
    for (var kk = 0u; kk < k4; kk++) {
        let s = load_slab(b_at, n4, step3);
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
