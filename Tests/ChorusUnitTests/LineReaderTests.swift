@testable import ChorusRuntime
import Foundation
import Testing

/// Line endings, byte order marks and oversized lines as the ingest reader sees them (issue 11).
@Suite struct LineReaderTests {
    func lines(of bytes: [UInt8], max: Int = 1 << 20) throws -> [String] {
        let path = NSTemporaryDirectory() + "chorus-lines-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
        var out: [String] = []
        var numbers: [Int] = []
        try LineReader.forEachLine(path: path, maxLineBytes: max) { n, line, _ in
            numbers.append(n)
            switch line {
            case let .text(b): out.append(String(decoding: b, as: UTF8.self))
            case let .tooLong(len, prefix): out.append("<\(len) bytes: \(String(decoding: prefix.prefix(3), as: UTF8.self))>")
            }
        }
        #expect(numbers == Array(0..<numbers.count).map { $0 + 1 })
        return out
    }

    @Test func everyLineEnding() throws {
        #expect(try lines(of: Array("a\nb\r\nc\rd".utf8)) == ["a", "b", "c", "d"])
        #expect(try lines(of: Array("a\r\rb\r".utf8)) == ["a", "", "b"])      // a blank line between two CRs
        #expect(try lines(of: Array("a\n\nb\n".utf8)) == ["a", "", "b"])
        #expect(try lines(of: []) == [])
    }

    @Test func byteOrderMarkAtTheStartOnly() throws {
        #expect(try lines(of: [0xEF, 0xBB, 0xBF] + Array("user_id,channel\nu1,x".utf8)) == ["user_id,channel", "u1,x"])
    }

    @Test func crlfSplitAcrossChunks() throws {
        // The reader's chunks are 4 MiB: put the CR as the chunk's last byte and the LF as the next chunk's first.
        let first = [UInt8](repeating: UInt8(ascii: "x"), count: (4 << 20) - 1)
        let got = try lines(of: first + [0x0D, 0x0A] + Array("next".utf8), max: 8 << 20)
        #expect(got.count == 2)
        #expect(got.last == "next")
    }

    @Test func oversizedLinesKeepAPrefix() throws {
        // A 5 MiB line spans two 4 MiB chunks: it is skipped without being buffered, but its start is kept.
        let big = Array("abc".utf8) + [UInt8](repeating: UInt8(ascii: "y"), count: 5 << 20)
        let got = try lines(of: big + Array("\nok\n".utf8))
        #expect(got == ["<\(big.count) bytes: abc>", "ok"])
    }
}

/// The ingest scan for superseded versions reads large files in parallel byte ranges: it must find exactly the
/// positions a single sequential read finds (issue 11, item 5).
@Suite struct SupersedeScanTests {
    func check(csv: Bool, crlf: Bool) throws {
        let dir = NSTemporaryDirectory() + "chorus-scan-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let nl = crlf ? "\r\n" : "\n"
        var lines: [String] = csv ? ["user_id,channel,country"] : []
        var lastLine: [String: Int] = [:]
        let pad = String(repeating: "x", count: 200)
        // 50k lines of ~230 bytes (> 8 MiB, so two ranges on two cores); ids 0..<500 appear at the start and again
        // near the end.
        for i in 0..<50_000 {
            let id = i < 500 ? "dup\(i)" : (i >= 49_000 && i < 49_500 ? "dup\(i - 49_000)" : "u\(i)")
            lines.append(csv ? "\(id),x,\(pad)\(i % 7)" : #"{"user_id":"\#(id)","channel":"x","name":"\#(pad)\#(i % 7)"}"#)
            lastLine[id] = lines.count
            if i % 1000 == 999 { lines.append("") }  // blank lines count as lines
        }
        let text = lines.joined(separator: nl) + nl
        let path = dir + (csv ? "/users.csv" : "/users.jsonl")
        #expect(FileManager.default.createFile(atPath: path, contents: Data(text.utf8)))
        #expect(try LineReader.chunkStarts(path: path, parts: 2).count == 2)
        let planned: [Ingestor.PlannedFile] = [(path, .users, csv ? .csv : .jsonl, nil)]
        let found = try Ingestor.lastVersions(of: planned, shared: Ingestor.Shared(maxInFlight: 1))
        #expect(found.count == 500)
        for k in 0..<500 {
            #expect(found["u\u{0}dup\(k)"] == Ingestor.position(file: 0, line: lastLine["dup\(k)"]!), "dup\(k)")
        }
    }

    @Test func parallelRangesFindTheSameLastVersions() throws {
        try check(csv: false, crlf: false)
        try check(csv: true, crlf: true)
    }
}
