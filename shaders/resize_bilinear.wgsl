// # resize_bilinear
//
// Bilinear resampling of planar maps, as torch.nn.functional.interpolate(mode="bilinear",
// align_corners=False, antialias=False) applied to the top-left crop x[:, :crop_h, :crop_w]
// (the crop is done by reading: rows keep the input's full width as their stride).
// Per axis, with scale = crop / out rounded to f32 like PyTorch's float scale:
// src = max(scale * (dst + 0.5) - 0.5, 0), i0 = floor(src), i1 = min(i0 + 1, crop - 1),
// lambda = src - i0; out = lerp over y of lerps over x of the four neighbours.
//
// Bindings: 0 x (read, (C, in_h, in_w) f32), 1 out (read_write, (C, out_h, out_w) f32),
// 2 params (uniform).
//
// One invocation computes one output element, (x, y, channel) = global id: a 3-D grid needs no
// integer division, which CPU adapters cannot vectorise. Neighbouring invocations read
// neighbouring pixels, so the four taps mostly hit the cache.
// Grid: (ceil(out_w / WG), out_h, C).

override WG: u32 = 64u;

struct Params {
    in_h: u32, in_w: u32, crop_h: u32, crop_w: u32,
    out_h: u32, out_w: u32, scale_y: f32, scale_x: f32,
}

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

// The two source indices and the weight of the second along one axis.
struct Taps { i0: u32, i1: u32, w: f32 }

fn taps(dst: u32, scale: f32, size: u32) -> Taps {
    let src = max(scale * (f32(dst) + 0.5) - 0.5, 0.0);
    let i0 = min(u32(src), size - 1u);
    return Taps(i0, min(i0 + 1u, size - 1u), clamp(src - f32(i0), 0.0, 1.0));
}

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ox = gid.x;
    if (ox >= p.out_w) {
        return;
    }
    let oy = gid.y;
    let c = gid.z;
    let tx = taps(ox, p.scale_x, p.crop_w);
    let ty = taps(oy, p.scale_y, p.crop_h);
    let plane = c * p.in_h * p.in_w;
    let row0 = plane + ty.i0 * p.in_w;
    let row1 = plane + ty.i1 * p.in_w;
    let top = mix(x[row0 + tx.i0], x[row0 + tx.i1], tx.w);
    let bottom = mix(x[row1 + tx.i0], x[row1 + tx.i1], tx.w);
    out[(c * p.out_h + oy) * p.out_w + ox] = mix(top, bottom, ty.w);
}
