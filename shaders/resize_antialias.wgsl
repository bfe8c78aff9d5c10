// # resize_antialias
//
// One pass of PIL's bilinear Image.resize for 8-bit images (libImaging/Resample.c), bit for
// bit: PIL's resize is separable, a horizontal and a vertical pass, each rounding to 8 bits. The filter weights are computed on the host in double precision exactly as PIL
// does (WGSL has no f64) and arrive as a fixed-point table with 22 fraction bits; this kernel
// does the integer part: out = clip8((1 << 21) + sum_t pixel[lo + t] * k[t]) with
// clip8(v) = clamp(v >> 22, 0, 255) (arithmetic shift), accumulated in i32 like PIL.
// The op runs it with HORIZONTAL (resample along x) and without (along y) in Pillow's order
// (see resize_antialias in ops/image.py), skipping a pass whose size does not change.
//
// Bindings: 0 src (read, u32), 1 table (read, i32), 2 dst (read_write, u32: (out_h, out_w, 3),
// one value 0..255 per element), 3 params (uniform).
// src is (in_h, in_w, channels): with PACKED, the raw image bytes, four per u32 word
// (little-endian: byte i is (src[i / 4] >> (8 * (i % 4))) & 255), channels 1, 3 or 4 (gray
// is replicated to RGB and alpha dropped, as PIL's convert("RGB")); without PACKED, one value
// per u32 and channels 3 (the first pass's output). In a horizontal pass in_h = out_h, in a
// vertical one in_w = out_w. Row o of table (one per output index along the resampled axis)
// is [lo, count, k_0 .. k_{taps-1}]: it reads source indices lo .. lo + count - 1.
//
// One invocation computes the three channels of one output pixel (x, y) = global id (a 2-D
// grid: no integer division, which CPU adapters cannot vectorise).
// Grid: (ceil(out_w / WG), out_h).

override WG: u32 = 64u;
override HORIZONTAL: bool = true;
override PACKED: bool = true;

struct Params {
    out_h: u32, out_w: u32, in_w: u32, channels: u32,
    taps: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read> table: array<i32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<uniform> p: Params;

fn value(e: u32) -> i32 {
    if (PACKED) {
        return i32((src[e >> 2u] >> ((e & 3u) * 8u)) & 255u);
    }
    return i32(src[e]);
}

// PIL's clip8: the rounded 8-bit value of a fixed-point sum.
fn clip8(v: i32) -> u32 {
    return u32(clamp(v >> 22u, 0, 255));
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ox = gid.x;
    let oy = gid.y;
    if (ox >= p.out_w) {
        return;
    }
    let idx = oy * p.out_w + ox;
    let o = select(oy, ox, HORIZONTAL);
    let row = o * (p.taps + 2u);
    let lo = u32(table[row]);
    let count = u32(table[row + 1u]);
    // Gray images read channel 0 three times.
    let green = select(0u, 1u, p.channels >= 3u);
    let blue = select(0u, 2u, p.channels >= 3u);
    var acc = vec3<i32>(1 << 21u);
    for (var t = 0u; t < count; t++) {
        let k = table[row + 2u + t];
        var pixel = 0u;
        if (HORIZONTAL) {
            pixel = oy * p.in_w + lo + t;
        } else {
            pixel = (lo + t) * p.in_w + ox;
        }
        let e = pixel * p.channels;
        acc += k * vec3<i32>(value(e), value(e + green), value(e + blue));
    }
    dst[3u * idx] = clip8(acc.x);
    dst[3u * idx + 1u] = clip8(acc.y);
    dst[3u * idx + 2u] = clip8(acc.z);
}
