// # permute
//
// out = x transposed by an axis permutation (numpy.transpose), written contiguous. Elements
// are copied as 32-bit words, so any 4-byte dtype works.
//
// The op first drops dimensions of size 1 and merges output axes that stay adjacent in x,
// so the kernel sees RANK (1..6) output dimensions. Output axis k counts from the innermost:
// dk is its size and sk the distance in x between neighbours along it (k < RANK - 1);
// `outer` is that distance along the outermost axis (RANK > 1).
//
// Bindings: 0 x (read), 1 out (read_write), 2 params (uniform).
//
// One invocation copies a run of up to RUN elements along the innermost output axis:
// output row `row` (all axes but the innermost), elements chunk * RUN ... of it. The row's
// coordinates cost RANK - 1 integer divisions, which CPU adapters cannot vectorise, so they
// are paid once per run instead of once per element (4-5x faster on lavapipe).
// Grid: grid_1d(rows * chunks, WG), chunks = ceil(d0 / RUN);
// run = gid.x + gid.y * num_workgroups.x * WG.

override WG: u32 = 64u;
override RUN: u32 = 16u;
override RANK: u32 = 6u;

struct Params {
    runs: u32, chunks: u32, outer: u32,
    d0: u32, d1: u32, d2: u32, d3: u32, d4: u32,
    s0: u32, s1: u32, s2: u32, s3: u32, s4: u32,
}

@group(0) @binding(0) var<storage, read> x: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let run = gid.x + gid.y * nwg.x * WG;
    if (run >= p.runs) {
        return;
    }
    let row = run / p.chunks;
    let first = (run % p.chunks) * RUN;
    var src = first * p.s0;
    var rest = row;
    if (RANK > 2u) {
        src += (rest % p.d1) * p.s1;
        rest /= p.d1;
    }
    if (RANK > 3u) {
        src += (rest % p.d2) * p.s2;
        rest /= p.d2;
    }
    if (RANK > 4u) {
        src += (rest % p.d3) * p.s3;
        rest /= p.d3;
    }
    if (RANK > 5u) {
        src += (rest % p.d4) * p.s4;
        rest /= p.d4;
    }
    if (RANK > 1u) {
        src += rest * p.outer;
    }
    let dst = row * p.d0 + first;
    let count = min(RUN, p.d0 - first);
    for (var t = 0u; t < count; t++) {
        out[dst + t] = x[src + t * p.s0];
    }
}
