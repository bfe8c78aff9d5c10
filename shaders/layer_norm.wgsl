// # layer_norm
//
// y = act((x - mean) / sqrt(var + eps) * weight + bias) + residual over the last dimension
// of x, viewed as (rows, C), f32 row-major. var is the biased variance (torch.nn.LayerNorm).
// Rows can have a mean large next to their spread, so: the sums run over x - x0 with x0 the
// row's first element (exact for nearby values, so the offset cancels before any rounding
// accumulates), and the variance is a second pass over the centred values, never
// E[x^2] - E[x]^2, which would cancel catastrophically.
// SAM's LayerNorm2d is this op on a channels-last map.
//
// Bindings: 0 x (rows, C), 1 weight (C), 2 bias (C), 3 residual (rows, C) (read),
// 4 y (rows, C) (read_write), 5 params (uniform).
//
// One invocation normalises one row. Rows are short (C <= 320 in MobileSAM) and many, so no
// workgroup memory or barriers are needed, and those cost a lot on CPU adapters.
// VEC4 (C % 4 == 0) reads and writes vec4s; otherwise single components of the vec4 arrays.
// Grid: grid_1d(rows, WG); row = gid.x + gid.y * num_workgroups.x * WG.

//! include activation.wgsl

override WG: u32 = 64u;
override VEC4: bool = true;
override ACT: u32 = 0u;
override HAS_RESIDUAL: bool = false;

struct Params { rows: u32, c: u32, eps: f32, _pad: u32 }

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> y: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: Params;

fn act4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(activate(v.x, ACT), activate(v.y, ACT), activate(v.z, ACT), activate(v.w, ACT));
}

fn norm_row_vec4(row: u32) {
    let c4 = p.c / 4u;
    let base = row * c4;
    let x0 = x[base].x;
    var sum = vec4<f32>(0.0);
    for (var k = 0u; k < c4; k++) {
        sum += x[base + k] - x0;
    }
    // mean = x0 + shift; centred values are (x - x0) - shift.
    let shift = (sum.x + sum.y + sum.z + sum.w) / f32(p.c);
    var sq = vec4<f32>(0.0);
    for (var k = 0u; k < c4; k++) {
        let d = (x[base + k] - x0) - shift;
        sq = fma(d, d, sq);
    }
    let inv_std = inverseSqrt((sq.x + sq.y + sq.z + sq.w) / f32(p.c) + p.eps);
    for (var k = 0u; k < c4; k++) {
        let d = (x[base + k] - x0) - shift;
        var v = act4(fma(d * inv_std, weight[k], bias[k]));
        if (HAS_RESIDUAL) {
            v += residual[base + k];
        }
        y[base + k] = v;
    }
}

fn load_x(i: u32) -> f32 {
    return x[i >> 2u][i & 3u];
}

fn norm_row_scalar(row: u32) {
    let base = row * p.c;
    let x0 = load_x(base);
    var sum = 0.0;
    for (var k = 0u; k < p.c; k++) {
        sum += load_x(base + k) - x0;
    }
    let shift = sum / f32(p.c);
    var sq = 0.0;
    for (var k = 0u; k < p.c; k++) {
        let d = (load_x(base + k) - x0) - shift;
        sq = fma(d, d, sq);
    }
    let inv_std = inverseSqrt(sq / f32(p.c) + p.eps);
    for (var k = 0u; k < p.c; k++) {
        let i = base + k;
        let d = (load_x(i) - x0) - shift;
        var v = activate(fma(d * inv_std, weight[k >> 2u][k & 3u], bias[k >> 2u][k & 3u]), ACT);
        if (HAS_RESIDUAL) {
            v += residual[i >> 2u][i & 3u];
        }
        y[i >> 2u][i & 3u] = v;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = gid.x + gid.y * nwg.x * WG;
    if (row >= p.rows) {
        return;
    }
    if (VEC4) {
        norm_row_vec4(row);
    } else {
        norm_row_scalar(row);
    }
}
