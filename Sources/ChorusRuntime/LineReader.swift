import ChorusModel
import Foundation
import Glibc

/// Reads a file line by line in 4 MiB chunks (blocking I/O: call it from a dedicated thread).
///
/// - Line endings: LF, CRLF and a lone CR (old Mac exports) all end a line; a CRLF split across two chunks is
///   still one line ending.
/// - A UTF-8 byte order mark at the start of the file is dropped, so the first record (or a CSV header's first
///   column) reads as written.
/// - Lines longer than `maxLineBytes` are not buffered whole: the reader reports their length and their first
///   `tooLongPrefixBytes` bytes (for the rejects file) and skips the rest.
enum LineReader {
    static let tooLongPrefixBytes = 2000

    enum Line {
        case text(UnsafeBufferPointer<UInt8>)
        case tooLong(Int, prefix: [UInt8])
    }

    /// Reads the lines of `path`, or of the byte range `from..<to` (which must start at a line start; see
    /// `chunkStarts`). Line numbers count from 1 at `from`; a byte order mark is dropped only at offset 0.
    static func forEachLine(path: String, maxLineBytes: Int, from: Int = 0, to: Int? = nil,
                            _ body: (_ lineNumber: Int, _ line: Line, _ bytesRead: Int) throws -> Void) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ChorusError(.notFound, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var offset = from
        let chunkSize = 4 << 20
        var chunk = [UInt8](repeating: 0, count: chunkSize)
        var carry: [UInt8] = []
        var skipping = 0          // > 0: inside an oversized line, bytes seen so far
        var skippedPrefix: [UInt8] = []
        var lineNo = 0
        var total = 0
        var afterCR = false       // the previous chunk ended in CR: a leading LF belongs to that line ending
        var atFileStart = from == 0

        func emit(_ segment: UnsafeBufferPointer<UInt8>) throws {
            lineNo += 1
            if skipping > 0 {
                try body(lineNo, .tooLong(skipping + segment.count, prefix: skippedPrefix), total)
                skipping = 0
                skippedPrefix = []
            } else if carry.isEmpty {
                try body(lineNo, .text(segment), total)
            } else {
                carry.append(contentsOf: segment)
                if carry.count > maxLineBytes {
                    try body(lineNo, .tooLong(carry.count, prefix: Array(carry.prefix(tooLongPrefixBytes))), total)
                } else {
                    try carry.withUnsafeBufferPointer { try body(lineNo, .text($0), total) }
                }
                carry.removeAll(keepingCapacity: true)
            }
        }

        while true {
            let want = to.map { min(chunkSize, $0 - offset) } ?? chunkSize
            if want <= 0 { break }
            let n = chunk.withUnsafeMutableBytes { pread(fd, $0.baseAddress, want, off_t(offset)) }
            if n > 0 { offset += n }
            if n < 0 {
                if errno == EINTR { continue }
                throw ChorusError(.storage, "read error in \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            total += n
            try chunk.withUnsafeBufferPointer { all in
                let buf = UnsafeBufferPointer(rebasing: all[0..<n])
                var start = 0
                if atFileStart {
                    atFileStart = false
                    if n >= 3, buf[0] == 0xEF, buf[1] == 0xBB, buf[2] == 0xBF { start = 3 }
                }
                if afterCR {
                    afterCR = false
                    if start < n, buf[start] == 0x0A { start += 1 }
                }
                while start < n {
                    var end = start
                    while end < n, buf[end] != 0x0A, buf[end] != 0x0D { end += 1 }
                    guard end < n else {
                        // No line ending in the rest of this chunk.
                        if skipping > 0 {
                            skipping += n - start
                        } else {
                            carry.append(contentsOf: buf[start..<n])
                            if carry.count > maxLineBytes {
                                skipping = carry.count
                                skippedPrefix = Array(carry.prefix(tooLongPrefixBytes))
                                carry.removeAll()
                            }
                        }
                        return
                    }
                    try emit(UnsafeBufferPointer(rebasing: buf[start..<end]))
                    if buf[end] == 0x0D {
                        if end + 1 < n {
                            start = buf[end + 1] == 0x0A ? end + 2 : end + 1
                        } else {
                            afterCR = true
                            start = n
                        }
                    } else {
                        start = end + 1
                    }
                }
            }
        }
        if skipping > 0 || !carry.isEmpty {
            try emit(UnsafeBufferPointer(start: nil, count: 0))
        }
    }

    /// Splits a file into at most `parts` byte ranges that each start at a line start (just after an LF), for
    /// reading in parallel. Returns the range starts, the first being 0. A file without LF is one range.
    static func chunkStarts(path: String, parts: Int) throws -> [Int] {
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        guard parts > 1, size > 0 else { return [0] }
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw ChorusError(.notFound, "cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var starts = [0]
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        for k in 1..<parts {
            var pos = max(starts.last! + 1, size * k / parts)
            var found = false
            while pos < size, !found {
                let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(pos - 1)) }
                if n <= 0 { break }
                if let i = buf[0..<n].firstIndex(of: 0x0A) { pos = pos - 1 + i + 1; found = true } else { pos += n }
            }
            if found, pos < size, pos > starts.last! { starts.append(pos) }
        }
        return starts
    }

    /// The first line that is not blank (a CSV header), or nil.
    static func firstNonBlankLine(path: String) throws -> [UInt8]? {
        struct Stop: Error {}
        var out: [UInt8]?
        do {
            try forEachLine(path: path, maxLineBytes: 1 << 20) { _, line, _ in
                guard case let .text(b) = line, !b.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else { return }
                out = Array(b)
                throw Stop()
            }
        } catch is Stop {}
        return out
    }
}
