// # threshold
//
// Binary masks from logits, packed 4 pixels per u32: logits (C, H, W) f32 planar ->
// out (C, ceil(H * W / 4)) u32. Byte j of word i of a channel is 1 if pixel 4 * i + j
// (row-major in that channel) has logit > value, else 0; read back as little-endian bytes
// and cut to H * W per channel this is the boolean mask. Each channel starts on a word
// boundary, and pixels past H * W in a channel's last word are 0. NaN logits give 0.
//
// Bindings: 0 logits (read), 1 out (read_write), 2 params (uniform).
//
// One invocation writes one word (4 pixels). Logits are read as scalars because a channel's
// pixels start at c * H * W, which need not be a multiple of 4. The channel is the grid's z,
// so no integer division is needed (CPU adapters cannot vectorise it).
// Grid: (grid_1d(words, WG).xy, C); word = gid.x + gid.y * num_workgroups.x * WG,
// channel = gid.z.

override WG: u32 = 64u;

struct Params { hw: u32, words: u32, value: f32, _pad: u32 }

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

// 1 in byte `j` if pixel `pixel` of the channel starting at `base` is set.
fn bit(base: u32, pixel: u32, j: u32) -> u32 {
    if (pixel >= p.hw) {
        return 0u;
    }
    return select(0u, 1u << (8u * j), logits[base + pixel] > p.value);
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let word = gid.x + gid.y * nwg.x * WG;
    if (word >= p.words) {
        return;
    }
    let base = gid.z * p.hw;
    let pixel = word * 4u;
    out[gid.z * p.words + word] = bit(base, pixel, 0u) | bit(base, pixel + 1u, 1u)
        | bit(base, pixel + 2u, 2u) | bit(base, pixel + 3u, 3u);
}
