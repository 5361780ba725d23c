import ChorusModel

/// Interns byte strings (ids, channel names, topics) as dense indices 0, 1, 2, … in insertion order.
///
/// The hot loops of the aggregate jobs look an id up once per record. A `[String: Int]` costs a `String` built
/// from the stored bytes, a SipHash and a heap-allocated key per entry; this table hashes the bytes where they
/// lie (FNV-1a 64 with the SplitMix finalizer, `StableHash`), probes linearly in one flat array and keeps all
/// keys in one byte arena, so a lookup touches two or three cache lines and allocates nothing.
public struct IdTable: Sendable {
    /// One probe slot, 16 bytes: the hash's top 32 bits, the index (-1: empty) and where the key lies in the
    /// arena, so a probe reads one slot and, on a tag match, the key's bytes: two cache lines at most.
    struct Slot {
        var tag: UInt32
        var index: Int32
        var start: UInt32
        var length: UInt32
        static let empty = Slot(tag: 0, index: -1, start: 0, length: 0)
    }
    private var slots: [Slot]
    private var mask: Int
    private var arena: [UInt8] = []
    private var offsets: [Int] = [0]    // key i is arena[offsets[i]..<offsets[i + 1]]
    private var hashes: [UInt64] = []   // for growing only

    public init(capacity: Int = 16) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [Slot](repeating: .empty, count: size)
        mask = size - 1
        hashes.reserveCapacity(capacity)
        offsets.reserveCapacity(capacity + 1)
    }

    public var count: Int { hashes.count }

    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 { StableHash.mixed64(bytes) }

    /// The slot of `bytes`: where it is, or the empty slot where it would go.
    @inline(__always)
    private func find(_ bytes: UnsafeRawBufferPointer, _ h: UInt64) -> Int {
        let tag = UInt32(truncatingIfNeeded: h >> 32)
        var s = Int(truncatingIfNeeded: h) & mask
        return slots.withUnsafeBufferPointer { sl in
            arena.withUnsafeBytes { a in
                while true {
                    let slot = sl[s]
                    if slot.index < 0 { return s }
                    if slot.tag == tag, Int(slot.length) == bytes.count,
                       bytes.count == 0 || memcmpEqual(a.baseAddress! + Int(slot.start), bytes.baseAddress!, bytes.count) {
                        return s
                    }
                    s = (s + 1) & mask
                }
            }
        }
    }

    /// The index of `bytes`, or nil.
    @inline(__always)
    public func index(of bytes: UnsafeRawBufferPointer) -> Int? {
        let i = slots[find(bytes, Self.hash(bytes))].index
        return i < 0 ? nil : Int(i)
    }

    public func index(of key: String) -> Int? {
        var k = key
        return k.withUTF8 { index(of: UnsafeRawBufferPointer($0)) }
    }

    /// The index of `bytes`, adding it when new.
    @discardableResult
    public mutating func intern(_ bytes: UnsafeRawBufferPointer) -> Int {
        let h = Self.hash(bytes)
        let s = find(bytes, h)
        if slots[s].index >= 0 { return Int(slots[s].index) }
        let index = hashes.count
        precondition(arena.count + bytes.count < Int(UInt32.max) && index < Int(Int32.max), "IdTable is full")
        slots[s] = Slot(tag: UInt32(truncatingIfNeeded: h >> 32), index: Int32(index), start: UInt32(arena.count),
                        length: UInt32(bytes.count))
        hashes.append(h)
        arena.append(contentsOf: bytes)
        offsets.append(arena.count)
        if hashes.count * 2 > slots.count { grow() }
        return index
    }

    @discardableResult
    public mutating func intern(_ key: String) -> Int {
        var k = key
        return k.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    /// Key `index` as a String.
    public func key(_ index: Int) -> String {
        String(decoding: arena[offsets[index]..<offsets[index + 1]], as: UTF8.self)
    }

    private mutating func grow() {
        let size = slots.count * 2
        var fresh = [Slot](repeating: .empty, count: size)
        mask = size - 1
        for old in slots where old.index >= 0 {
            var s = Int(truncatingIfNeeded: hashes[Int(old.index)]) & mask
            while fresh[s].index >= 0 { s = (s + 1) & mask }
            fresh[s] = old
        }
        slots = fresh
    }
}

@inline(__always)
private func memcmpEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
    var i = 0
    while i + 8 <= n {
        if a.loadUnaligned(fromByteOffset: i, as: UInt64.self) != b.loadUnaligned(fromByteOffset: i, as: UInt64.self) {
            return false
        }
        i += 8
    }
    while i < n {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
