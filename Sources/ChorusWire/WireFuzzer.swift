import ChorusModel
import Foundation
import SwiftProtobuf

/// Structure-aware fuzzing of the wire contract (issue 21): random `Request`s that decode correctly, with random
/// well-typed values in every field of every nested message, deterministic by seed.
///
/// How it works. swift-protobuf's generated `decodeMessage(decoder:)` asks a `Decoder` for field numbers and then
/// calls the typed method of each field (`decodeSingularUInt32Field`, `decodeRepeatedMessageField`, ...).
/// `RandomDecoder` is such a decoder that invents the values instead of reading bytes, so the generated code itself
/// says which fields exist and what type each has: nothing here names a field, and a field added to the .proto is
/// fuzzed from the next build on. The field numbers of a message type are found once by probing: a decoder that
/// offers number n (1...64) sees whether the generated code reads it. A `Request` gets exactly one body case,
/// chosen uniformly (so every request type is covered), and sometimes none or two (a oneof conflict).
///
/// Values favour the edges: empty, duplicate, long and huge strings; 0, 1, powers of two and the extremes of every
/// integer type; NaN, ±∞, −0 and the extremes of floats; byte strings whose lengths are multiples of 4 and 8 (so
/// length checks of packed floats are passed as often as failed), shard-key-shaped bytes; repeated fields of 0, 1,
/// a few and (rarely) thousands of elements; unknown enum values. `dictionary` adds strings that reach deeper code
/// (job kinds, stage names, side names, the cluster id) — but never a real node's id or name, an endpoint, or a
/// parameter that makes a worker sleep, so a fuzz run cannot legitimately drain, remove or replace a real worker.
public struct WireFuzzer {
    var rng: SplitMix64
    /// Strings tried often: they get past the first checks of a handler.
    public var dictionary: [String]
    /// Nesting depth at most (a `Request` is depth 0).
    public var maxDepth = 5
    var recent: [String] = []
    var schemas: [ObjectIdentifier: [Int]] = [:]
    /// Valid requests to start from, by body case (field number). With `mutationRate`, a request is one of these
    /// with one or two fields of its body replaced by random values: random requests rarely get all of a
    /// handler's first checks right (run_task needs an id, a known kind and stage, and a partition the worker is
    /// primary of), a mutated valid one reaches the code behind them.
    public var seeds: [Int: [Chorus_V1_Request]] = [:]
    public var mutationRate = 0.3

    public static let defaultDictionary = [
        "users", "items", "features", "als", "sentiment", "sentiment-train", "themes", "catalog", "compute",
        "als-load", "als-last", "als-save", "als-users-1", "als-items-1", "st-load", "st-eval-1", "st-eval-0",
        "sentiment-content", "sentiment-users", "sentiment-why", "themes-collect", "content-sentiment", "series",
        "alerts", "keys", "topic:tech", "hashtag:x", "brand:acme", "implicit", "explicit", "interaction", "last",
        "true", "false", "cholesky", "cg", "fnv1a64", "client", "mode", "rank", "iterations", "dimensions", "as_of",
        "holdout_by", "lambda", "alpha", "seed", "k", "dataset", "most_negative", "max_docs", "cg_steps", "solver",
        "store_top_n", "eval_users", "neighbours", "repeats", "biases", "holdout", "job_id", "name",
        "0", "1", "2", "3", "-1", "1024", "65536", "262144", "3000", "1e300", "-1e300", "NaN", "inf",
        "18446744073709551615", "18446744073709551616", "9223372036854775807", "-9223372036854775808",
    ]

    /// Job kinds and stage names: a run_task needs both right (and a partition the worker is primary of) to get
    /// past the dispatch, so they are drawn more often than the rest of the dictionary.
    static let kindsAndStages = ["features", "als", "sentiment", "sentiment-train", "themes", "catalog", "compute",
                                 "als-load", "als-last", "als-save", "als-users-1", "als-items-1", "st-load",
                                 "st-eval-1", "sentiment-content", "sentiment-users", "sentiment-why", "themes-collect",
                                 "users", "items"]

    public init(seed: UInt64, dictionary extra: [String] = []) {
        rng = SplitMix64(seed: seed ^ 0x2545_F491_4F6C_DD1D)
        dictionary = Self.defaultDictionary + extra
    }

    /// The field numbers of `Request.body` (one per request type).
    public mutating func requestCases() -> [Int] { schema(Chorus_V1_Request.self).filter { $0 >= 10 } }

    /// A random request; `bodyCase` picks the request type by its field number (nil: uniform over all of them).
    public mutating func request(bodyCase: Int? = nil) -> Chorus_V1_Request {
        let cases = requestCases()
        let seeded = bodyCase.map { seeds[$0] != nil ? [$0] : [] } ?? Array(seeds.keys).sorted()
        if !seeded.isEmpty, chance(mutationRate) {
            let number = seeded[below(seeded.count)]
            guard let list = seeds[number], !list.isEmpty else { return Chorus_V1_Request() }
            var m = list[below(list.count)]
            var d = RandomDecoder(fuzzer: self, plan: [number])
            d.mutateNext = true
            try? m.decodeMessage(decoder: &d)
            self = d.fuzzer
            return m
        }
        var plan: [Int] = []
        for n in [1, 2, 3] where chance(0.7) { plan.append(n) }
        let r = unit()
        if r < 0.02 {
            // no body at all
        } else if r < 0.05 {
            plan.append(cases[below(cases.count)])
            plan.append(cases[below(cases.count)])
        } else {
            plan.append(bodyCase ?? cases[below(cases.count)])
        }
        plan.shuffle(using: &rng)
        var m = Chorus_V1_Request()
        var d = RandomDecoder(fuzzer: self, plan: plan)
        try? m.decodeMessage(decoder: &d)
        self = d.fuzzer
        return m
    }

    /// A random instance of any message type (all fields considered, at depth `depth`).
    public mutating func message<M: SwiftProtobuf.Message>(_ type: M.Type, depth: Int = 0) -> M {
        var m = M()
        let plan = self.plan(numbers: schema(M.self), depth: depth)
        var d = RandomDecoder(fuzzer: self, plan: plan, depth: depth)
        try? m.decodeMessage(decoder: &d)
        self = d.fuzzer
        return m
    }

    /// How one serialized request goes on the wire: usually as is (one frame); sometimes truncated, with a flipped
    /// byte, or with extra frames (which the server drops as malformed).
    public enum Frames: Equatable {
        case whole([UInt8])
        case truncated([UInt8])
        case flipped([UInt8])
        case extra([[UInt8]])
    }

    public mutating func frames(_ bytes: [UInt8]) -> Frames {
        let r = unit()
        if r < 0.08, !bytes.isEmpty { return .truncated(Array(bytes.prefix(below(bytes.count)))) }
        if r < 0.10, !bytes.isEmpty {
            var b = bytes
            b[below(b.count)] ^= UInt8(1 + below(255))
            return .flipped(b)
        }
        if r < 0.12 { return .extra(chance(0.5) ? [bytes, randomBytes(below(16))] : [[], [], bytes]) }
        return .whole(bytes)
    }

    // MARK: schema

    mutating func plan(numbers: [Int], depth: Int) -> [Int] {
        guard depth <= maxDepth else { return [] }
        var plan: [Int] = []
        // The request body's own fields are usually all there (a handler checks them first), deeper ones half.
        let p = depth <= 1 ? 0.85 : 0.5
        for n in numbers where chance(p) {
            plan.append(n)
            if chance(0.03) { plan.append(n) }  // a field seen twice: the last wins, or a repeated one grows
        }
        plan.shuffle(using: &rng)
        return plan
    }

    mutating func schema<M: SwiftProtobuf.Message>(_ type: M.Type) -> [Int] {
        let key = ObjectIdentifier(type)
        if let s = schemas[key] { return s }
        var found: [Int] = []
        for n in 1...64 {
            var probe = RandomDecoder(fuzzer: WireFuzzer(seed: 0), plan: [n], probing: true)
            var m = M()
            try? m.decodeMessage(decoder: &probe)
            if probe.probeHit { found.append(n) }
        }
        schemas[key] = found
        return found
    }

    // MARK: values

    mutating func unit() -> Double { rng.unit() }
    public mutating func below(_ n: Int) -> Int { rng.below(n) }
    public mutating func chance(_ p: Double) -> Bool { rng.unit() < p }

    static let alphabet: [Character] = Array("abcdefghijklmnopqrstuvxyz_-./: ") + ["é", "ß", "中", "😀", "\u{0}", "\u{7F}", "\u{202E}"]

    mutating func string() -> String {
        let r = unit()
        let s: String
        if r < 0.10 {
            s = ""
        } else if r < 0.35 {
            s = Self.kindsAndStages[below(Self.kindsAndStages.count)]  // often enough to reach the task code
        } else if r < 0.45 {
            s = dictionary[below(dictionary.count)]
        } else if r < 0.55, !recent.isEmpty {
            s = recent[below(recent.count)]  // duplicates within one message
        } else if r < 0.59 {
            s = String(repeating: Self.alphabet[below(Self.alphabet.count)], count: 1025 + below(4096))
        } else if r < 0.595 {
            s = String(repeating: "x", count: 1 << 20)
        } else {
            s = String((0..<below(13)).map { _ in Self.alphabet[below(Self.alphabet.count)] })
        }
        if s.utf8.count < 256 {
            recent.append(s)
            if recent.count > 16 { recent.removeFirst() }
        }
        return s
    }

    mutating func randomBytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }

    mutating func bytes() -> Data {
        let r = unit()
        if r < 0.10 { return Data() }
        if r < 0.40 {
            // Packed float32 or float64 values, sometimes with NaN and infinities among them.
            let stride = chance(0.5) ? 4 : 8
            let n = [1, 2, 3, 4, 8, 9, 16, 64][below(8)] * (chance(0.8) ? 1 : 1 + below(64))
            var d = Data(capacity: n * stride)
            for _ in 0..<n {
                if stride == 4 {
                    withUnsafeBytes(of: float().bitPattern.littleEndian) { d.append(contentsOf: $0) }
                } else {
                    withUnsafeBytes(of: double().bitPattern.littleEndian) { d.append(contentsOf: $0) }
                }
            }
            return d
        }
        if r < 0.55 {
            // Shard-key-shaped: [partition u32 BE][role][id].
            let p = UInt32(below(70))
            return Data([UInt8(p >> 24), UInt8(p >> 16 & 0xFF), UInt8(p >> 8 & 0xFF), UInt8(p & 0xFF)]
                        + (chance(0.8) ? [UInt8(below(8))] + randomBytes(below(12)) : []))
        }
        if r < 0.58 { return Data(randomBytes(65_536 + below(65_536))) }
        if r < 0.62 {
            // A sentiment model file's magic and format version 1, then garbage.
            return Data(Array("CHORUSSM".utf8) + [1, 0, 0, 0] + randomBytes(below(64)))
        }
        return Data(randomBytes(below(64)))
    }

    static let u32s: [UInt32] = [0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 63, 64, 65, 255, 256, 512, 513, 1023, 1024, 65_535,
                                 65_536, 1 << 31, UInt32.max - 1, UInt32.max]
    static let u64s: [UInt64] = [0, 1, 2, 3, 64, 1_000_000_000, 1 << 32, 1 << 53, UInt64(Int64.max), 1 << 63,
                                 UInt64.max - 1, UInt64.max]

    mutating func uint32() -> UInt32 {
        let r = unit()
        if r < 0.5 { return Self.u32s[below(Self.u32s.count)] }
        if r < 0.8 { return UInt32(below(chance(0.5) ? 16 : 100)) }  // partition numbers of small clusters
        return UInt32(truncatingIfNeeded: rng.next())
    }

    mutating func uint64() -> UInt64 {
        let r = unit()
        if r < 0.5 { return Self.u64s[below(Self.u64s.count)] }
        if r < 0.8 { return UInt64(below(100)) }
        return rng.next()
    }

    mutating func int32() -> Int32 {
        chance(0.3) ? [Int32.min, Int32.min + 1, -1, Int32.max][below(4)] : Int32(truncatingIfNeeded: Int64(bitPattern: uint64()))
    }

    mutating func int64() -> Int64 {
        chance(0.3) ? [Int64.min, Int64.min + 1, -1, -1_000_000_000_000, Int64.max][below(5)] : Int64(bitPattern: uint64())
    }

    mutating func double() -> Double {
        let r = unit()
        if r < 0.5 {
            let edge: [Double] = [.nan, -.nan, .signalingNaN, .infinity, -.infinity, 0, -0.0, 1, -1, 0.5,
                                  .greatestFiniteMagnitude, -.greatestFiniteMagnitude, .leastNonzeroMagnitude,
                                  1e30, -1e30, 1e300, 9.3e18, -9.3e18, 4294967296]
            return edge[below(edge.count)]
        }
        if r < 0.8 { return (unit() - 0.5) * 20 }
        return Double(bitPattern: rng.next())
    }

    mutating func float() -> Float {
        let r = unit()
        if r < 0.5 {
            let edge: [Float] = [.nan, -.nan, .infinity, -.infinity, 0, -0.0, 1, -1, .greatestFiniteMagnitude,
                                 .leastNonzeroMagnitude, 1e30, -1e30, 3e9]
            return edge[below(edge.count)]
        }
        if r < 0.8 { return Float((unit() - 0.5) * 20) }
        return Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
    }

    mutating func count(scalar: Bool) -> Int {
        let r = unit()
        if r < 0.2 { return 0 }
        if r < 0.45 { return 1 }
        if r < 0.65 { return 2 }
        if r < 0.90 { return 3 + below(6) }
        if r < 0.98 || !scalar { return 9 + below(scalar ? 100 : 24) }
        return 1000 + below(5000)
    }

    mutating func enumRaw() -> Int {
        chance(0.8) ? below(9) : [-1, 99, Int(Int32.max), Int(Int32.min)][below(4)]
    }
}

/// The `Decoder` that invents values (see `WireFuzzer`). `plan` is a stack: the field numbers still to produce for
/// each message being built, innermost last.
struct RandomDecoder: SwiftProtobuf.Decoder {
    var fuzzer: WireFuzzer
    var stack: [[Int]]
    var depth: Int
    let probing: Bool
    var probeHit = false
    /// The next nested message is mutated: one or two of its fields get random values, the rest stay.
    var mutateNext = false

    init(fuzzer: WireFuzzer, plan: [Int], depth: Int = 0, probing: Bool = false) {
        self.fuzzer = fuzzer
        stack = [plan]
        self.depth = depth
        self.probing = probing
    }

    mutating func handleConflictingOneOf() throws {}

    mutating func nextFieldNumber() throws -> Int? {
        guard let top = stack.last, let n = top.first else { return nil }
        stack[stack.count - 1].removeFirst()
        return n
    }

    /// Runs `make` unless probing (then only notes that the field exists).
    private mutating func value<T>(_ make: (inout WireFuzzer) -> T) -> T? {
        if probing { probeHit = true; return nil }
        return make(&fuzzer)
    }

    private mutating func values<T>(scalar: Bool = true, _ make: (inout WireFuzzer) -> T) -> [T] {
        if probing { probeHit = true; return [] }
        let n = fuzzer.count(scalar: scalar)
        return (0..<n).map { _ in make(&fuzzer) }
    }

    mutating func decodeSingularFloatField(value v: inout Float) throws { if let x = value({ $0.float() }) { v = x } }
    mutating func decodeSingularFloatField(value v: inout Float?) throws { if let x = value({ $0.float() }) { v = x } }
    mutating func decodeRepeatedFloatField(value v: inout [Float]) throws { v += values { $0.float() } }
    mutating func decodeSingularDoubleField(value v: inout Double) throws { if let x = value({ $0.double() }) { v = x } }
    mutating func decodeSingularDoubleField(value v: inout Double?) throws { if let x = value({ $0.double() }) { v = x } }
    mutating func decodeRepeatedDoubleField(value v: inout [Double]) throws { v += values { $0.double() } }
    mutating func decodeSingularInt32Field(value v: inout Int32) throws { if let x = value({ $0.int32() }) { v = x } }
    mutating func decodeSingularInt32Field(value v: inout Int32?) throws { if let x = value({ $0.int32() }) { v = x } }
    mutating func decodeRepeatedInt32Field(value v: inout [Int32]) throws { v += values { $0.int32() } }
    mutating func decodeSingularInt64Field(value v: inout Int64) throws { if let x = value({ $0.int64() }) { v = x } }
    mutating func decodeSingularInt64Field(value v: inout Int64?) throws { if let x = value({ $0.int64() }) { v = x } }
    mutating func decodeRepeatedInt64Field(value v: inout [Int64]) throws { v += values { $0.int64() } }
    mutating func decodeSingularUInt32Field(value v: inout UInt32) throws { if let x = value({ $0.uint32() }) { v = x } }
    mutating func decodeSingularUInt32Field(value v: inout UInt32?) throws { if let x = value({ $0.uint32() }) { v = x } }
    mutating func decodeRepeatedUInt32Field(value v: inout [UInt32]) throws { v += values { $0.uint32() } }
    mutating func decodeSingularUInt64Field(value v: inout UInt64) throws { if let x = value({ $0.uint64() }) { v = x } }
    mutating func decodeSingularUInt64Field(value v: inout UInt64?) throws { if let x = value({ $0.uint64() }) { v = x } }
    mutating func decodeRepeatedUInt64Field(value v: inout [UInt64]) throws { v += values { $0.uint64() } }
    mutating func decodeSingularSInt32Field(value v: inout Int32) throws { try decodeSingularInt32Field(value: &v) }
    mutating func decodeSingularSInt32Field(value v: inout Int32?) throws { try decodeSingularInt32Field(value: &v) }
    mutating func decodeRepeatedSInt32Field(value v: inout [Int32]) throws { try decodeRepeatedInt32Field(value: &v) }
    mutating func decodeSingularSInt64Field(value v: inout Int64) throws { try decodeSingularInt64Field(value: &v) }
    mutating func decodeSingularSInt64Field(value v: inout Int64?) throws { try decodeSingularInt64Field(value: &v) }
    mutating func decodeRepeatedSInt64Field(value v: inout [Int64]) throws { try decodeRepeatedInt64Field(value: &v) }
    mutating func decodeSingularFixed32Field(value v: inout UInt32) throws { try decodeSingularUInt32Field(value: &v) }
    mutating func decodeSingularFixed32Field(value v: inout UInt32?) throws { try decodeSingularUInt32Field(value: &v) }
    mutating func decodeRepeatedFixed32Field(value v: inout [UInt32]) throws { try decodeRepeatedUInt32Field(value: &v) }
    mutating func decodeSingularFixed64Field(value v: inout UInt64) throws { try decodeSingularUInt64Field(value: &v) }
    mutating func decodeSingularFixed64Field(value v: inout UInt64?) throws { try decodeSingularUInt64Field(value: &v) }
    mutating func decodeRepeatedFixed64Field(value v: inout [UInt64]) throws { try decodeRepeatedUInt64Field(value: &v) }
    mutating func decodeSingularSFixed32Field(value v: inout Int32) throws { try decodeSingularInt32Field(value: &v) }
    mutating func decodeSingularSFixed32Field(value v: inout Int32?) throws { try decodeSingularInt32Field(value: &v) }
    mutating func decodeRepeatedSFixed32Field(value v: inout [Int32]) throws { try decodeRepeatedInt32Field(value: &v) }
    mutating func decodeSingularSFixed64Field(value v: inout Int64) throws { try decodeSingularInt64Field(value: &v) }
    mutating func decodeSingularSFixed64Field(value v: inout Int64?) throws { try decodeSingularInt64Field(value: &v) }
    mutating func decodeRepeatedSFixed64Field(value v: inout [Int64]) throws { try decodeRepeatedInt64Field(value: &v) }
    mutating func decodeSingularBoolField(value v: inout Bool) throws { if let x = value({ $0.chance(0.5) }) { v = x } }
    mutating func decodeSingularBoolField(value v: inout Bool?) throws { if let x = value({ $0.chance(0.5) }) { v = x } }
    mutating func decodeRepeatedBoolField(value v: inout [Bool]) throws { v += values { $0.chance(0.5) } }
    mutating func decodeSingularStringField(value v: inout String) throws { if let x = value({ $0.string() }) { v = x } }
    mutating func decodeSingularStringField(value v: inout String?) throws { if let x = value({ $0.string() }) { v = x } }
    mutating func decodeRepeatedStringField(value v: inout [String]) throws { v += values(scalar: false) { $0.string() } }
    mutating func decodeSingularBytesField(value v: inout Data) throws { if let x = value({ $0.bytes() }) { v = x } }
    mutating func decodeSingularBytesField(value v: inout Data?) throws { if let x = value({ $0.bytes() }) { v = x } }
    mutating func decodeRepeatedBytesField(value v: inout [Data]) throws { v += values(scalar: false) { $0.bytes() } }

    mutating func decodeSingularEnumField<E: SwiftProtobuf.Enum>(value v: inout E) throws where E.RawValue == Int {
        if let raw = value({ $0.enumRaw() }) { v = E(rawValue: raw) ?? E() }
    }
    mutating func decodeSingularEnumField<E: SwiftProtobuf.Enum>(value v: inout E?) throws where E.RawValue == Int {
        if let raw = value({ $0.enumRaw() }) { v = E(rawValue: raw) ?? E() }
    }
    mutating func decodeRepeatedEnumField<E: SwiftProtobuf.Enum>(value v: inout [E]) throws where E.RawValue == Int {
        v += values { E(rawValue: $0.enumRaw()) ?? E() }
    }

    /// A nested message: its own plan pushed on the stack, built by its generated code with this same decoder.
    private mutating func nested<M: SwiftProtobuf.Message>(_ start: M?) throws -> M? {
        if probing { probeHit = true; return nil }
        guard depth < fuzzer.maxDepth else { return start ?? M() }
        var m = start ?? M()
        let numbers = fuzzer.schema(M.self)
        if mutateNext, !numbers.isEmpty {
            mutateNext = false
            stack.append((0..<(1 + fuzzer.below(2))).map { _ in numbers[fuzzer.below(numbers.count)] })
        } else {
            stack.append(fuzzer.plan(numbers: numbers, depth: depth + 1))
        }
        depth += 1
        try m.decodeMessage(decoder: &self)
        depth -= 1
        stack.removeLast()
        return m
    }

    mutating func decodeSingularMessageField<M: SwiftProtobuf.Message>(value v: inout M?) throws {
        if let m = try nested(v) { v = m }
    }
    mutating func decodeRepeatedMessageField<M: SwiftProtobuf.Message>(value v: inout [M]) throws {
        if probing { probeHit = true; return }
        for _ in 0..<min(fuzzer.count(scalar: false), depth >= 2 ? 4 : 32) {
            if let m = try nested(M?.none) { v.append(m) }
        }
    }
    mutating func decodeSingularGroupField<G: SwiftProtobuf.Message>(value v: inout G?) throws {
        try decodeSingularMessageField(value: &v)
    }
    mutating func decodeRepeatedGroupField<G: SwiftProtobuf.Message>(value v: inout [G]) throws {
        try decodeRepeatedMessageField(value: &v)
    }

    /// Maps: every map in chorus.v1 is map<string, string>; any other key or value type stays empty.
    private mutating func stringMap<K, V>(_ v: inout [K: V]) {
        if probing { probeHit = true; return }
        for _ in 0..<fuzzer.count(scalar: false) {
            let key = fuzzer.chance(0.7) ? fuzzer.dictionary[fuzzer.below(fuzzer.dictionary.count)] : fuzzer.string()
            guard let k = key as? K, let value = fuzzer.string() as? V else { return }
            v[k] = value
        }
    }
    mutating func decodeMapField<KeyType, ValueType: MapValueType>(
        fieldType: _ProtobufMap<KeyType, ValueType>.Type, value v: inout _ProtobufMap<KeyType, ValueType>.BaseType
    ) throws { stringMap(&v) }
    mutating func decodeMapField<KeyType, ValueType>(
        fieldType: _ProtobufEnumMap<KeyType, ValueType>.Type, value v: inout _ProtobufEnumMap<KeyType, ValueType>.BaseType
    ) throws where ValueType.RawValue == Int { if probing { probeHit = true } }
    mutating func decodeMapField<KeyType, ValueType>(
        fieldType: _ProtobufMessageMap<KeyType, ValueType>.Type, value v: inout _ProtobufMessageMap<KeyType, ValueType>.BaseType
    ) throws { if probing { probeHit = true } }

    mutating func decodeExtensionField(values: inout ExtensionFieldValueSet, messageType: any Message.Type,
                                       fieldNumber: Int) throws {}
}
