// The vec4-safe simple path shared by the convolution kernels. The including kernel defines
// `element(t) -> f32` (output element t, flat index), the output binding `out:
// array<vec4<f32>>` and `p.count` (number of output elements).

// The simple path: invocation t computes the four output elements 4t .. 4t+3 (flat index)
// and writes them as one vec4, because WGSL lets a write to one vector component touch the
// whole vector, so two invocations must never share one. Only the output's last vec4 may be
// partial; its single invocation writes just the elements that exist.
fn simple(t: u32) {
    let i = 4u * t;
    if (i >= p.count) {
        return;
    }
    let last = p.count - 1u;
    let v = vec4<f32>(element(i), element(min(i + 1u, last)), element(min(i + 2u, last)),
                      element(min(i + 3u, last)));
    if (i + 3u < p.count) {
        out[t] = v;
        return;
    }
    for (var j = 0u; i + j < p.count; j++) {
        out[t][j] = v[j];
    }
}
