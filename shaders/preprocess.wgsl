// # preprocess
//
// SAM's image normalisation and padding: out[y, x, c] = (image[y, x, c] - mean[c]) / std[c]
// inside the h x w image and 0 elsewhere in the size x size output (SAM pads the normalised
// tensor with zeros on the right and bottom). f32 subtraction then division, like PyTorch.
//
// Bindings: 0 image (read, (h, w, 3) u32 values 0..255, resize_antialias's output),
// 1 out (read_write, (size, size, 3) f32, channels-last), 2 params (uniform).
//
// One invocation writes the three channels of one output pixel (x, y) = global id.
// Grid: (ceil(size / WG), size).

override WG: u32 = 64u;

struct Params {
    h: u32, w: u32, size: u32, _pad0: u32,
    mean_r: f32, mean_g: f32, mean_b: f32, _pad1: u32,
    std_r: f32, std_g: f32, std_b: f32, _pad2: u32,
}

@group(0) @binding(0) var<storage, read> image: array<u32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;

@compute @workgroup_size(WG, 1, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let x = gid.x;
    let y = gid.y;
    if (x >= p.size) {
        return;
    }
    let idx = y * p.size + x;
    var v = vec3<f32>(0.0);
    if (y < p.h && x < p.w) {
        let at = 3u * (y * p.w + x);
        let rgb = vec3<f32>(f32(image[at]), f32(image[at + 1u]), f32(image[at + 2u]));
        v = (rgb - vec3<f32>(p.mean_r, p.mean_g, p.mean_b)) / vec3<f32>(p.std_r, p.std_g, p.std_b);
    }
    out[3u * idx] = v.x;
    out[3u * idx + 1u] = v.y;
    out[3u * idx + 2u] = v.z;
}
