// # window_partition
//
// TinyViT's windowed-attention input: x (H, W, C) f32 tokens, zero-padded at the bottom and
// right to (nH * ws, nW * ws), cut into nH * nW windows of ws x ws tokens. Windows are
// row-major over the window grid, tokens row-major inside a window:
//     out[wy * nW + wx, ty * ws + tx, c] = x[wy * ws + ty, wx * ws + tx, c]   (0 past H or W)
//
// Bindings: 0 x (H, W, C) (read), 1 out (nH * nW, ws * ws, C) (read_write), 2 params.
//
// One invocation copies one output token, all its channels: the integer divisions that
// locate the token (not vectorisable on CPU adapters) are paid once per token rather than
// once per channel, 2x faster on lavapipe. VEC4 (C % 4 == 0) moves vec4s; otherwise single
// components of the vec4 arrays. `cu` is C in those units.
// Grid: grid_1d(nH * nW * ws * ws, WG); token = gid.x + gid.y * num_workgroups.x * WG.

override WG: u32 = 64u;
override VEC4: bool = true;

struct Params {
    tokens: u32,  // nH * nW * ws * ws
    h: u32, w: u32, cu: u32,
    ws: u32, nw: u32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> out: array<vec4<f32>>;
@group(0) @binding(2) var<uniform> p: Params;

fn copy_unit(src: u32, dst: u32) {
    if (VEC4) {
        out[dst] = x[src];
    } else {
        out[dst >> 2u][dst & 3u] = x[src >> 2u][src & 3u];
    }
}

fn zero_unit(dst: u32) {
    if (VEC4) {
        out[dst] = vec4<f32>(0.0);
    } else {
        out[dst >> 2u][dst & 3u] = 0.0;
    }
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let token = gid.x + gid.y * nwg.x * WG;
    if (token >= p.tokens) {
        return;
    }
    let area = p.ws * p.ws;
    let t = token % area;
    let win = token / area;
    let row = (win / p.nw) * p.ws + t / p.ws;
    let col = (win % p.nw) * p.ws + t % p.ws;
    let dst = token * p.cu;
    if (row < p.h && col < p.w) {
        let src = (row * p.w + col) * p.cu;
        for (var k = 0u; k < p.cu; k++) {
            copy_unit(src + k, dst + k);
        }
    } else {
        for (var k = 0u; k < p.cu; k++) {
            zero_unit(dst + k);
        }
    }
}
