// # matmul_tiled
//
// The same product as `matmul` (C[b] = act(alpha * A[b] @ B[b] + bias) + residual[b], f32,
// row-major, K % 4 == 0 and N % 4 == 0, batch strides in elements, 0 for a shared operand),
// computed the way GPUs with fast workgroup memory reward: a workgroup stages a BM x BK tile
// of A and a BK x BN tile of B in workgroup memory, then every invocation accumulates a
// TM x (4 * TN4) block of C from it. BM = WG_Y * TM, BN = 4 * WG_X * TN4. Invocation (x, y)
// owns rows y, y + WG_Y, ... and column vec4s x, x + WG_X, ..., so neighbouring invocations
// read neighbouring workgroup memory and store neighbouring columns.
// Limits (checked by the op's variant table): TM <= 8, TN4 <= 2, BM * BK <= 2048,
// BK * BN / 4 <= 512, BK % 4 == 0: 16 KiB of workgroup memory, WebGPU's default limit.
//
// Bindings: 0 a (read), 1 b (read), 2 bias (read), 3 residual (read), 4 c (read_write),
// 5 params (uniform).
//
// Grid: (ceil(N / BN), ceil(M / BM), batch), or a range of its rows of workgroups starting at
// matrix row `row0`.

//! include activation.wgsl

override WG_X: u32 = 16u;
override WG_Y: u32 = 16u;
override TM: u32 = 4u;
override TN4: u32 = 1u;
override BK: u32 = 16u;
override ACT: u32 = 0u;
override HAS_BIAS: bool = false;
override HAS_RESIDUAL: bool = false;

struct Params {
    m: u32, n: u32, k: u32, alpha: f32,
    // row0: the first row of C this dispatch computes (a large product goes as several).
    batch_a: u32, batch_b: u32, batch_c: u32, row0: u32,
}

@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> b: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read> residual: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> c: array<vec4<f32>>;
@group(0) @binding(5) var<uniform> p: Params;

// A tile k-major (as_[k * BM + row]): an invocation's TM values for one k sit WG_Y apart.
var<workgroup> as_: array<f32, 2048>;
// B tile row-major in vec4s (bs[k * BN4 + col4]).
var<workgroup> bs: array<vec4<f32>, 512>;

fn epilogue(v: vec4<f32>, col4: u32, at: u32) -> vec4<f32> {
    var r = p.alpha * v;
    if (HAS_BIAS) {
        r += bias[col4];
    }
    r = vec4<f32>(activate(r.x, ACT), activate(r.y, ACT), activate(r.z, ACT), activate(r.w, ACT));
    if (HAS_RESIDUAL) {
        r += residual[at];
    }
    return r;
}

@compute @workgroup_size(WG_X, WG_Y, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let bm = WG_Y * TM;
    let bn4 = WG_X * TN4;
    let bk4 = BK / 4u;
    let threads = WG_X * WG_Y;
    let n4 = p.n / 4u;
    let k4 = p.k / 4u;
    let tile_row = p.row0 + wid.y * bm;
    let tile_col4 = wid.x * bn4;
    let a_base = wid.z * p.batch_a / 4u;
    let b_base = wid.z * p.batch_b / 4u;
    var acc: array<vec4<f32>, 16>;
    for (var k0 = 0u; k0 < k4; k0 += bk4) {
        // Stage the tiles; what lies past M, N or K is zero, so it adds nothing.
        for (var i = li; i < bm * bk4; i += threads) {
            let row = tile_row + i / bk4;
            let kk4 = k0 + i % bk4;
            var v = vec4<f32>(0.0);
            if (row < p.m && kk4 < k4) {
                v = a[a_base + row * k4 + kk4];
            }
            let at = (i % bk4) * 4u * bm + i / bk4;
            as_[at] = v.x;
            as_[at + bm] = v.y;
            as_[at + 2u * bm] = v.z;
            as_[at + 3u * bm] = v.w;
        }
        for (var i = li; i < BK * bn4; i += threads) {
            let kk = k0 * 4u + i / bn4;
            let col4 = tile_col4 + i % bn4;
            var v = vec4<f32>(0.0);
            if (kk < p.k && col4 < n4) {
                v = b[b_base + kk * n4 + col4];
            }
            bs[i] = v;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            for (var i = 0u; i < TM; i++) {
                let av = vec4<f32>(as_[kk * bm + lid.y + i * WG_Y]);
                for (var j = 0u; j < TN4; j++) {
                    acc[i * TN4 + j] = fma(av, bs[kk * bn4 + lid.x + j * WG_X], acc[i * TN4 + j]);
                }
            }
        }
        workgroupBarrier();
    }
    let c_base = wid.z * p.batch_c / 4u;
    for (var i = 0u; i < TM; i++) {
        let row = tile_row + lid.y + i * WG_Y;
        for (var j = 0u; j < TN4; j++) {
            let col4 = tile_col4 + lid.x + j * WG_X;
            if (row < p.m && col4 < n4) {
                let at = c_base + row * n4 + col4;
                c[at] = epilogue(acc[i * TN4 + j], col4, at);
            }
        }
    }
}
