/// SplitMix64: a tiny, fast, well-mixed deterministic PRNG (the same sequence on every platform). Used by the
/// data generator and by ALS initialisation.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }
    public mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(n, 1))) }
    /// Standard normal (Box-Muller) computed without the platform's libm, so it is bit-identical everywhere.
    public mutating func gaussian() -> Double {
        let u1 = max(unit(), 1e-300), u2 = unit()
        return (-2 * PortableMath.log(u1)).squareRoot() * PortableMath.cos(2 * Double.pi * u2)
    }
}

/// Elementary functions in plain Swift (no libm): the same bits on every platform.
public enum PortableMath {
    /// Natural log for x > 0: ln(x) = e·ln 2 + 2·atanh((m−1)/(m+1)) with x = m·2^e, m in [1, 2).
    public static func log(_ x: Double) -> Double {
        let e = Double(x.exponent)
        let m = x.significand
        let t = (m - 1) / (m + 1), t2 = t * t
        var s = 0.0, p = t
        for i in stride(from: 1, through: 39, by: 2) { s += p / Double(i); p *= t2 }
        return 2 * s + e * 0.693_147_180_559_945_3
    }

    /// e^x = 2^n · e^r with |r| ≤ ln2/2, Taylor series for e^r. Underflows to 0 below −745, +∞ above 709.
    public static func exp(_ x: Double) -> Double {
        if x.isNaN { return x }
        if x < -745 { return 0 }
        if x > 709 { return .infinity }
        let n = (x / 0.693_147_180_559_945_3).rounded()
        let r = x - n * 0.693_147_180_559_945_3
        var term = 1.0, s = 1.0
        for i in 1...20 { term *= r / Double(i); s += term }
        return Double(sign: .plus, exponent: Int(n), significand: 1) * s
    }

    /// Cosine: reduced to [−π, π], then a Taylor series long enough for double precision.
    public static func cos(_ x: Double) -> Double {
        var r = x.truncatingRemainder(dividingBy: 2 * Double.pi)
        if r > Double.pi { r -= 2 * Double.pi } else if r < -Double.pi { r += 2 * Double.pi }
        let r2 = r * r
        var term = 1.0, s = 1.0
        for i in 1...14 {
            term *= -r2 / Double((2 * i - 1) * (2 * i))
            s += term
        }
        return s
    }
}
