// # matmul_strided (general path)
//
// C[b] = act(alpha * A[b] @ B[b] + bias) + residual[b] for any strides: A(b, m, k) is
// a[b * sab + m * sam + k * sak] and B(b, k, n) is b[b * sbb + k * sbk + n * sbn], so
// transposed operands cost nothing. bias (N); residual and C contiguous (batch, M, N).
// The simple, obviously correct kernel: `matmul` is the fast one for aligned, row-major data.
//
// Bindings: 0 a (read), 1 b (read), 2 bias (read), 3 residual (read), 4 c (read_write),
// 5 params (uniform).
//
// One invocation computes one element of C. Grid: (ceil(N / 8), ceil(M / 8), batch), or a
// range of its rows of workgroups starting at row y0.

//! include activation.wgsl

override ACT: u32 = 0u;
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

struct Params {
    m: u32, n: u32, k: u32, alpha: f32,
    sab: u32, sam: u32, sak: u32, sbb: u32,
    // y0: the first row of this dispatch (a large product goes as several).
    sbk: u32, sbn: u32, y0: u32, _pad1: u32,
}

@group(0) @binding(0) var<storage, read> a: array<f32>;
@group(0) @binding(1) var<storage, read> b: array<f32>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read> residual: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

@compute @workgroup_size(8, 8, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let col = gid.x;
    let row = gid.y + p.y0;
    if (row >= p.m || col >= p.n) {
        return;
    }
    var a_at = gid.z * p.sab + row * p.sam;
    var b_at = gid.z * p.sbb + col * p.sbn;
    var acc = 0.0;
    for (var k = 0u; k < p.k; k++) {
        acc = fma(a[a_at], b[b_at], acc);
        a_at += p.sak;
        b_at += p.sbk;
    }
    var v = p.alpha * acc;
    if (HAS_BIAS) {
        v += bias[col];
    }
    v = activate(v, ACT);
    let at = (gid.z * p.m + row) * p.n + col;
    if (HAS_RESIDUAL) {
        v += residual[at];
    }
    c[at] = v;
}
