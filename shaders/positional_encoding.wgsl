// # positional_encoding
//
// SAM's random-Fourier positional encoding (PositionEmbeddingRandom) with the prompt encoder's
// label embeddings. For point n with raw coordinates (x, y):
// c = 2 * ((x, y) + offset) / (denom_x, denom_y) - 1 (f32, divided like SAM), then per column j
// t_j = c . gaussian[:, j] and out[n] = [sin(2 pi t), cos(2 pi t)] (F sin columns, then F cos).
// Accuracy: sin(2 pi (t - round(t))) is within ~2.5e-6 of float64 on lavapipe for std-1
// gaussians (|2 pi t| up to ~40), limited by t's f32 rounding; PyTorch's f32 sin(2 pi t) is
// ~2.4e-6 off, and the same formula without the reduction ~3.4e-6 here (1.7e-5 vs 9e-6 at std 4).
// With labels: label -1 zeroes the encoding and adds label_table[0] (not_a_point_embed); any
// other label adds label_table[label + 1] (point_embeddings[label]); labels outside
// [-1, L - 2] are clamped to the table (labels live on the GPU, so the op cannot check them).
//
// Bindings: 0 coords (read, (N, 2) f32 x, y), 1 gaussian (read, (2, F) f32), 2 labels (read,
// (N,) i32), 3 label_table (read, (L, 2F) f32), 4 out (read_write, (N, 2F) f32),
// 5 params (uniform). Without HAS_COORDS the points are the dense grid: point n is the pixel
// (n % grid_w, n / grid_w), so out is (grid_h, grid_w, 2F) channels-last.
//
// One invocation computes sin and cos of column j = gid.x for point n = gid.z * grid_w + gid.y
// (the grid pixel (gid.y, gid.z); with coords grid_w = N and gid.z = 0).
// Grid: (ceil(F / WG), grid_w, grid_h), or (ceil(F / WG), N, 1) with coords.

override WG: u32 = 64u;
override HAS_COORDS: bool = true;
override HAS_LABELS: bool = false;

struct Params {
    feats: u32, grid_w: u32, table_rows: u32, _pad0: u32,
    offset: f32, denom_x: f32, denom_y: f32, _pad1: u32,
}

@group(0) @binding(0) var<storage, read> coords: array<f32>;
@group(0) @binding(1) var<storage, read> gaussian: array<f32>;
@group(0) @binding(2) var<storage, read> labels: array<i32>;
@group(0) @binding(3) var<storage, read> label_table: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<uniform> p: Params;

const TAU: f32 = 6.283185307179586;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    if (j >= p.feats) {
        return;
    }
    let n = gid.z * p.grid_w + gid.y;
    var raw = vec2<f32>(f32(gid.y), f32(gid.z));
    if (HAS_COORDS) {
        raw = vec2<f32>(coords[2u * n], coords[2u * n + 1u]);
    }
    let c = 2.0 * ((raw + p.offset) / vec2<f32>(p.denom_x, p.denom_y)) - 1.0;
    // t is in turns: dropping its whole turns first (exact in f32) keeps the argument of
    // sin and cos within [-pi, pi], where every adapter is most accurate.
    let t = c.x * gaussian[j] + c.y * gaussian[p.feats + j];
    let angle = TAU * (t - round(t));
    var s = sin(angle);
    var co = cos(angle);
    let at = n * 2u * p.feats + j;
    if (HAS_LABELS) {
        let label = labels[n];
        let row = u32(clamp(label + 1, 0, i32(p.table_rows) - 1)) * 2u * p.feats + j;
        let keep = select(1.0, 0.0, label == -1);
        s = fma(keep, s, label_table[row]);
        co = fma(keep, co, label_table[row + p.feats]);
    }
    out[at] = s;
    out[at + p.feats] = co;
}
