// # elementwise
//
// out = OP(a, b, c) element by element, f32 row-major, with OP an override constant:
//
// | OP | op          | out[i]                      | operands                          |
// |----|-------------|-----------------------------|-----------------------------------|
// | 0  | add         | a[i] + b[i]                 | a, b same shape                   |
// | 1  | mul         | a[i] * b[i]                 | a, b same shape                   |
// | 2  | add_bias    | a[i] + b[i % C]             | b (C,) over the last dim of a     |
// | 3  | scale_shift | a[i] * b[i % C] + c[i % C]  | b, c (C,) over the last dim of a; |
//    |             |   (+ c only if HAS_SHIFT)   |   no c without HAS_SHIFT          |
// | 4  | gelu        | gelu(a[i]) (exact, erf)     |                                   |
// | 5  | relu        | max(a[i], 0)                |                                   |
// | 6  | scale       | a[i] * value                |                                   |
// | 7  | fill        | value                       | no inputs                         |
// | 8  | add_tiled   | a[i] + b[i % n_b]           | b's shape trailing a's: b repeats |
//    |             |                             |   over a's leading dimensions     |
//
// Bindings: 0 a (read), 1 b (read), 2 c (read), 3 out (read_write), 4 params (uniform).
// Unused operands are bound to a dummy buffer and never read.
//
// Work is counted in units: vec4s when VEC4 (element count and, for the broadcast ops, C
// multiples of 4; ~2x faster on lavapipe than scalars), else single elements, read and
// written as components of the vec4 arrays. One invocation handles one unit, except for the
// broadcast ops (2, 3), where it handles one row of C channels (see run_row).
// Grid: grid_1d(n, WG) with n = units, or rows for ops 2 and 3;
// invocation = gid.x + gid.y * num_workgroups.x * WG.

//! include activation.wgsl

override WG: u32 = 64u;
override OP: u32 = 0u;
override VEC4: bool = true;
override HAS_SHIFT: bool = true;

struct Params {
    n: u32,  // invocations that do work: units, or rows for the broadcast ops
    c: u32,  // units per row (C / 4 with VEC4, else C) for the broadcast ops, units of b
             // for add_tiled, else 1
    value: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> c: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> p: Params;

fn gelu4(v: vec4<f32>) -> vec4<f32> {
    return vec4<f32>(gelu(v.x), gelu(v.y), gelu(v.z), gelu(v.w));
}

// OP on loaded operands: av = a[i], bv = b[i], sv = b[i % C], tv = c[i % C]. The scalar path
// splats scalars into vec4s and keeps lane x; the compiler drops the dead lanes.
fn apply(av: vec4<f32>, bv: vec4<f32>, sv: vec4<f32>, tv: vec4<f32>) -> vec4<f32> {
    switch OP {
        case 0u, 8u: { return av + bv; }
        case 1u: { return av * bv; }
        case 2u: { return av + sv; }
        case 3u: { return fma(av, sv, tv); }
        case 4u: { return gelu4(av); }
        case 5u: { return max(av, vec4<f32>(0.0)); }
        case 6u: { return av * p.value; }
        default: { return vec4<f32>(p.value); }
    }
}

fn load_a(i: u32) -> vec4<f32> {
    if (VEC4) {
        return a[i];
    }
    return vec4<f32>(a[i >> 2u][i & 3u]);
}

fn load_b(i: u32) -> vec4<f32> {
    if (VEC4) {
        return b[i];
    }
    return vec4<f32>(b[i >> 2u][i & 3u]);
}

fn load_c(i: u32) -> vec4<f32> {
    if (VEC4) {
        return c[i];
    }
    return vec4<f32>(c[i >> 2u][i & 3u]);
}

fn store(i: u32, v: vec4<f32>) {
    if (VEC4) {
        out[i] = v;
    } else {
        out[i >> 2u][i & 3u] = v.x;
    }
}

// Element-wise ops: unit i.
fn run_unit(i: u32) {
    var av = vec4<f32>(0.0);
    var bv = vec4<f32>(0.0);
    if (OP != 7u) {
        av = load_a(i);
    }
    if (OP <= 1u) {
        bv = load_b(i);
    }
    if (OP == 8u) {
        bv = load_b(i % p.c);
    }
    store(i, apply(av, bv, vec4<f32>(0.0), vec4<f32>(0.0)));
}

// Broadcast ops: a whole row of p.c units, so no per-unit `i % C` (integer division is not
// vectorised on CPU adapters; this is ~1.5x faster on lavapipe).
fn run_row(row: u32) {
    let base = row * p.c;
    for (var k = 0u; k < p.c; k++) {
        var tv = vec4<f32>(0.0);
        if (OP == 3u && HAS_SHIFT) {
            tv = load_c(k);
        }
        store(base + k, apply(load_a(base + k), vec4<f32>(0.0), load_b(k), tv));
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= p.n) {
        return;
    }
    if (OP == 2u || OP == 3u) {
        run_row(i);
    } else {
        run_unit(i);
    }
}
