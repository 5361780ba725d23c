import ChorusModel

/// The fields of a stored `chorus.v1.Interaction` that aggregate jobs read, taken straight from the protobuf
/// bytes: no message, no `String` for the id or the comment text. The buffers point into the value they were
/// parsed from and live only as long as it does (inside one scan callback).
///
/// It follows protobuf's rules: the last occurrence of a field wins, unknown fields are skipped, and bytes that
/// are not a well-formed message throw, as `Chorus_V1_Interaction(serializedBytes:)` would. Strings are not
/// checked for UTF-8 here; the worker validated every record when it was ingested.
public struct InteractionFields {
    public var userID = UnsafeRawBufferPointer(start: nil, count: 0)
    public var contentID = UnsafeRawBufferPointer(start: nil, count: 0)
    public var channel = UnsafeRawBufferPointer(start: nil, count: 0)
    /// The `InteractionType` number (0 when absent).
    public var type: Int32 = 0
    public var ts: Int64 = 0

    public struct Malformed: Error, CustomStringConvertible {
        public let offset: Int
        public var description: String { "malformed chorus.v1.Interaction at byte \(offset)" }
    }

    /// The interaction's kind, or nil for a type this build does not know (such records are skipped, as
    /// `Wire.decode` skips them).
    @inlinable public var kind: InteractionKind? { InteractionKind(rawValue: Int(type)) }

    public init(parsing bytes: UnsafeRawBufferPointer) throws {
        var i = 0
        let n = bytes.count
        @inline(__always) func varint() throws -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                guard i < n, shift < 64 else { throw Malformed(offset: i) }
                let b = bytes[i]
                i += 1
                result |= UInt64(b & 0x7f) << shift
                if b < 0x80 { return result }
                shift += 7
            }
        }
        while i < n {
            let tag = try varint()
            let field = tag >> 3
            guard field > 0 else { throw Malformed(offset: i) }
            switch tag & 7 {
            case 0:
                let v = try varint()
                if field == 4 { type = Int32(truncatingIfNeeded: v) } else if field == 6 { ts = Int64(bitPattern: v) }
            case 1:
                guard n - i >= 8 else { throw Malformed(offset: i) }
                i += 8
            case 2:
                let len = try varint()
                guard len <= UInt64(n - i) else { throw Malformed(offset: i) }
                let slice = UnsafeRawBufferPointer(rebasing: bytes[i..<(i + Int(len))])
                switch field {
                case 2: userID = slice
                case 3: contentID = slice
                case 5: channel = slice
                default: break
                }
                i += Int(len)
            case 5:
                guard n - i >= 4 else { throw Malformed(offset: i) }
                i += 4
            default:
                throw Malformed(offset: i)
            }
        }
    }
}
