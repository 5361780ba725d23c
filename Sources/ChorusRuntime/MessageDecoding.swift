import Foundation
import SwiftProtobuf

extension SwiftProtobuf.Message {
    /// Decodes a message from bytes the store lends to a scan callback, without copying them. The bytes are only
    /// valid inside the callback, and so is nothing here: decoding copies what the message keeps.
    /// (swift-protobuf deprecated decoding from `UnsafeRawBufferPointer` directly; that was 244 warning lines.)
    public init(borrowing bytes: UnsafeRawBufferPointer) throws {
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            self.init()
            return
        }
        let data = Data(bytesNoCopy: UnsafeMutableRawPointer(mutating: base), count: bytes.count, deallocator: .none)
        try self.init(serializedBytes: data)
    }
}
