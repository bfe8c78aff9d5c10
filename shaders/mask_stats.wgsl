// # mask_stats
//
// Per plane of logits (C, H, W) f32 planar, what the automatic mask generator filters on, so
// the host reads back 8 words per mask instead of the mask: out (C, 8) u32 holds, for plane c,
//   [0] pixels with logit > hi, [1] pixels with logit > lo (the stability score's
//   intersection and union counts), [2] pixels with logit > value (the mask's area),
//   [3] x0, [4] y0, [5] x1, [6] y1: the smallest and largest column and row of a pixel with
//   logit > value (inclusive); 0xffffffff, 0xffffffff, 0, 0 when no pixel is; [7] 0.
// NaN logits count nowhere.
//
// Bindings: 0 logits (read), 1 out (read_write), 2 params (uniform).
//
// One workgroup reduces one plane: invocation i walks columns i, i + WG, ... of every row,
// keeping its own counts and box (no integer division), and workgroup atomics combine them.
// Planes first .. first + count - 1 (a slice, for pacing) are the workgroups of one dispatch.
// Grid: (count, 1, 1); plane = first + workgroup_id.x.

override WG: u32 = 64u;

struct Params {
    h: u32,
    w: u32,
    first: u32,
    _pad: u32,
    value: f32,
    hi: f32,
    lo: f32,
    _pad2: f32,
}

@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

var<workgroup> acc: array<atomic<u32>, 7>;

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    if (lid < 7u) {
        atomicStore(&acc[lid], select(0u, 0xffffffffu, lid == 3u || lid == 4u));
    }
    workgroupBarrier();
    let plane = p.first + wid.x;
    let base = plane * p.h * p.w;
    var n_hi = 0u;
    var n_lo = 0u;
    var n_on = 0u;
    var x0 = 0xffffffffu;
    var y0 = 0xffffffffu;
    var x1 = 0u;
    var y1 = 0u;
    for (var y = 0u; y < p.h; y++) {
        let row = base + y * p.w;
        var row_on = false;
        for (var x = lid; x < p.w; x += WG) {
            let v = logits[row + x];
            n_hi += select(0u, 1u, v > p.hi);
            n_lo += select(0u, 1u, v > p.lo);
            if (v > p.value) {
                n_on += 1u;
                x0 = min(x0, x);
                x1 = max(x1, x);
                row_on = true;
            }
        }
        if (row_on) {
            y0 = min(y0, y);
            y1 = max(y1, y);
        }
    }
    atomicAdd(&acc[0], n_hi);
    atomicAdd(&acc[1], n_lo);
    atomicAdd(&acc[2], n_on);
    atomicMin(&acc[3], x0);
    atomicMin(&acc[4], y0);
    atomicMax(&acc[5], x1);
    atomicMax(&acc[6], y1);
    workgroupBarrier();
    if (lid < 7u) {
        out[plane * 8u + lid] = atomicLoad(&acc[lid]);
    } else if (lid == 7u) {
        out[plane * 8u + 7u] = 0u;
    }
}
