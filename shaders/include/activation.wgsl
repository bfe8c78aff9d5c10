// Activations shared by kernels with fused epilogues. ACT: 0 none, 1 GELU (exact, erf), 2 ReLU.

// erf(x) by Abramowitz & Stegun 7.1.26 (absolute error <= 1.5e-7), odd-extended.
fn erf_approx(x: f32) -> f32 {
    let ax = abs(x);
    let t = 1.0 / (1.0 + 0.3275911 * ax);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    let y = 1.0 - poly * exp(-ax * ax);
    return select(y, -y, x < 0.0);
}

fn gelu(x: f32) -> f32 {
    return 0.5 * x * (1.0 + erf_approx(x * 0.70710678118654752));
}

fn activate(x: f32, act: u32) -> f32 {
    switch act {
        case 1u: { return gelu(x); }
        case 2u: { return max(x, 0.0); }
        default: { return x; }
    }
}
