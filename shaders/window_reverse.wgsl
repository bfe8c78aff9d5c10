// # window_reverse
//
// The inverse of window_partition, with TinyViT's residual add fused: windows
// (nH * nW, ws * ws, C) f32 back to an (H, W, C) map, dropping the padding tokens:
//     out[y, x, c] = windows[(y / ws) * nW + x / ws, (y % ws) * ws + x % ws, c]
//                    + residual[y, x, c]   (when HAS_RESIDUAL)
//
// Bindings: 0 windows (read), 1 residual (H, W, C) (read), 2 out (H, W, C) (read_write),
// 3 params (uniform).
//
// One invocation writes one output pixel, all its channels: the integer divisions that
// locate it (not vectorisable on CPU adapters) are paid once per pixel rather than once per
// channel. VEC4 (C % 4 == 0) moves vec4s; otherwise single components of the vec4 arrays.
// `cu` is C in those units.
// Grid: grid_1d(H * W, WG); pixel = gid.x + gid.y * num_workgroups.x * WG.

override WG: u32 = 64u;
override VEC4: bool = true;
override HAS_RESIDUAL: bool = false;

struct Params {
    pixels: u32,  // H * W
    w: u32, cu: u32, ws: u32,
    nw: u32, _pad0: u32, _pad1: u32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> windows: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;

fn copy_unit(src: u32, dst: u32) {
    if (VEC4) {
        var v = windows[src];
        if (HAS_RESIDUAL) {
            v += residual[dst];
        }
        out[dst] = v;
    } else {
        var v = windows[src >> 2u][src & 3u];
        if (HAS_RESIDUAL) {
            v += residual[dst >> 2u][dst & 3u];
        }
        out[dst >> 2u][dst & 3u] = v;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let pixel = gid.x + gid.y * nwg.x * WG;
    if (pixel >= p.pixels) {
        return;
    }
    let row = pixel / p.w;
    let col = pixel % p.w;
    let win = (row / p.ws) * p.nw + col / p.ws;
    let t = (row % p.ws) * p.ws + col % p.ws;
    let src = (win * p.ws * p.ws + t) * p.cu;
    let dst = pixel * p.cu;
    for (var k = 0u; k < p.cu; k++) {
        copy_unit(src + k, dst + k);
    }
}
