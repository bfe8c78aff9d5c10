// # softmax
//
// y = exp(x - max) / sum(exp(x - max)) over the last dimension of x, viewed as (rows, N),
// f32 row-major. Subtracting the row maximum keeps exp() in range for any finite input.
//
// Bindings: 0 x (rows, N) (read), 1 y (rows, N) (read_write), 2 params (uniform).
//
// One invocation handles one row in three passes: the maximum; exp(x - max) written to y
// while summing; y scaled by 1 / sum. One exp per element, no workgroup memory or barriers
// (costly on CPU adapters).
// VEC4 (N % 4 == 0) reads and writes vec4s; otherwise single components of the vec4 arrays.
// Grid: grid_1d(rows, WG); row = gid.x + gid.y * num_workgroups.x * WG.

override WG: u32 = 64u;
override VEC4: bool = true;

struct Params { rows: u32, n: u32, _pad0: u32, _pad1: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

fn softmax_row_vec4(row: u32) {
    let n4 = p.n / 4u;
    let base = row * n4;
    var hi = x[base];
    for (var k = 1u; k < n4; k++) {
        hi = max(hi, x[base + k]);
    }
    let m = max(max(hi.x, hi.y), max(hi.z, hi.w));
    var sum = vec4<f32>(0.0);
    for (var k = 0u; k < n4; k++) {
        let e = exp(x[base + k] - m);
        y[base + k] = e;
        sum += e;
    }
    let inv = 1.0 / (sum.x + sum.y + sum.z + sum.w);
    for (var k = 0u; k < n4; k++) {
        y[base + k] *= inv;
    }
}

fn softmax_row_scalar(row: u32) {
    let base = row * p.n;
    var m = x[base >> 2u][base & 3u];
    for (var k = 1u; k < p.n; k++) {
        let i = base + k;
        m = max(m, x[i >> 2u][i & 3u]);
    }
    var sum = 0.0;
    for (var k = 0u; k < p.n; k++) {
        let i = base + k;
        let e = exp(x[i >> 2u][i & 3u] - m);
        y[i >> 2u][i & 3u] = e;
        sum += e;
    }
    let inv = 1.0 / sum;
    for (var k = 0u; k < p.n; k++) {
        let i = base + k;
        y[i >> 2u][i & 3u] *= inv;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * WG;
    if (row >= p.rows) {
        return;
    }
    if (VEC4) {
        softmax_row_vec4(row);
    } else {
        softmax_row_scalar(row);
    }
}
