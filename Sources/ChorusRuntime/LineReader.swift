import ChorusModel
import Foundation
import Glibc

/// Reads a file line by line in 4 MiB chunks (blocking I/O: call it from a dedicated thread).
/// Lines longer than `maxLineBytes` are not buffered whole: the reader reports their length and skips them.
enum LineReader {
    enum Line {
        case text(UnsafeBufferPointer<UInt8>)
        case tooLong(Int)
    }

    static func forEachLine(path: String, maxLineBytes: Int,
                            _ body: (_ lineNumber: Int, _ line: Line, _ bytesRead: Int) throws -> Void) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ChorusError(.notFound, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        let chunkSize = 4 << 20
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var carry: [UInt8] = []
        var skipping = 0  // > 0: inside an oversized line, bytes seen so far
        var lineNo = 0
        var total = 0
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, chunkSize) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ChorusError(.storage, "read error in \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
            try chunk.withUnsafeBufferPointer { all in
                let buf = UnsafeBufferPointer(rebasing: all[0..<n])
                var start = 0
                while start < n {
                    guard let nl = buf[start...].firstIndex(of: 0x0A) else {
                        // No newline in the rest of this chunk.
                        if skipping > 0 {
                            skipping += n - start
                        } else {
                            carry.append(contentsOf: buf[start..<n])
                            if carry.count > maxLineBytes {
                                skipping = carry.count
                                carry.removeAll()
                            }
                        }
                        return
                    }
                    lineNo += 1
                    if skipping > 0 {
                        try body(lineNo, .tooLong(skipping + nl - start), total)
                        skipping = 0
                    } else if carry.isEmpty {
                        try body(lineNo, .text(UnsafeBufferPointer(rebasing: buf[start..<nl])), total)
                    } else {
                        carry.append(contentsOf: buf[start..<nl])
                        if carry.count > maxLineBytes {
                            try body(lineNo, .tooLong(carry.count), total)
                        } else {
                            try carry.withUnsafeBufferPointer { try body(lineNo, .text($0), total) }
                        }
                        carry.removeAll(keepingCapacity: true)
                    }
                    start = nl + 1
                }
            }
        }
        if skipping > 0 {
            lineNo += 1
            try body(lineNo, .tooLong(skipping), total)
        } else if !carry.isEmpty {
            lineNo += 1
            if carry.count > maxLineBytes {
                try body(lineNo, .tooLong(carry.count), total)
            } else {
                try carry.withUnsafeBufferPointer { try body(lineNo, .text($0), total) }
            }
        }
    }
}
