// Sixteen f32 accumulators as four vec4s: one row of a 16-column register block (matmul,
// conv2d, conv_transpose2x2), or 16 consecutive values of one row of weights.
struct Acc { c0: vec4<f32>, c1: vec4<f32>, c2: vec4<f32>, c3: vec4<f32> }

// acc + a * w, lane by lane.
fn step1(acc: Acc, a: f32, w: Acc) -> Acc {
    let av = vec4<f32>(a);
    return Acc(fma(av, w.c0, acc.c0), fma(av, w.c1, acc.c1), fma(av, w.c2, acc.c2),
               fma(av, w.c3, acc.c3));
}

// acc + a.x * w0 + a.y * w1 + a.z * w2 + a.w * w3: four steps along K.
fn step4(acc: Acc, a: vec4<f32>, w0: Acc, w1: Acc, w2: Acc, w3: Acc) -> Acc {
    return step1(step1(step1(step1(acc, a.x, w0), a.y, w1), a.z, w2), a.w, w3);
}
