/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed hash, so an assignment made with it cannot be predicted or
/// steered without the key, and it is the same on every machine and in every process (unlike Swift's `Hasher`).
/// Chorus uses it to assign users to the arms of an experiment (docs/campaigns.md "Measurement").
public struct SipHash24: Sendable, Equatable {
    public let k0: UInt64
    public let k1: UInt64

    public init(k0: UInt64, k1: UInt64) { self.k0 = k0; self.k1 = k1 }

    /// The 128-bit key from 16 bytes, little-endian, as in the reference implementation.
    public init(key: [UInt8]) {
        precondition(key.count == 16, "SipHash-2-4 takes a 16-byte key")
        func word(_ o: Int) -> UInt64 { (0..<8).reduce(0) { $0 | UInt64(key[o + $1]) << (8 * UInt64($1)) } }
        self.init(k0: word(0), k1: word(8))
    }

    /// A key derived from a text (for example a plan's measurement key): FNV-1a 64 of the text and of the text with
    /// a suffix, mixed. Documented so another implementation can reproduce an assignment.
    public init(deriving text: String) {
        self.init(k0: StableHash.avalanche(StableHash.fnv1a64(text)),
                  k1: StableHash.avalanche(StableHash.fnv1a64(text + "/siphash-k1")))
    }

    public func hash<C: Collection>(_ message: C) -> UInt64 where C.Element == UInt8 {
        var v0: UInt64 = 0x736f6d6570736575 ^ k0
        var v1: UInt64 = 0x646f72616e646f6d ^ k1
        var v2: UInt64 = 0x6c7967656e657261 ^ k0
        var v3: UInt64 = 0x7465646279746573 ^ k1
        @inline(__always) func round() {
            v0 &+= v1; v1 = v1.rotl(13); v1 ^= v0; v0 = v0.rotl(32)
            v2 &+= v3; v3 = v3.rotl(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotl(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotl(17); v1 ^= v2; v2 = v2.rotl(32)
        }
        var m: UInt64 = 0, n = 0
        for b in message {
            m |= UInt64(b) << (8 * UInt64(n & 7))
            n += 1
            if n & 7 == 0 {
                v3 ^= m; round(); round(); v0 ^= m
                m = 0
            }
        }
        let last = m | UInt64(n & 0xFF) << 56
        v3 ^= last; round(); round(); v0 ^= last
        v2 ^= 0xFF
        round(); round(); round(); round()
        return v0 ^ v1 ^ v2 ^ v3
    }

    public func hash(_ s: String) -> UInt64 { hash(s.utf8) }

    /// The hash as a number in [0, 1) (its top 53 bits).
    public func unit(_ s: String) -> Double { Double(hash(s) >> 11) / 9_007_199_254_740_992 }
}

extension UInt64 {
    @inline(__always) fileprivate func rotl(_ k: UInt64) -> UInt64 { (self << k) | (self >> (64 - k)) }
}
