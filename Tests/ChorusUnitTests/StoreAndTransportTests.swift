import ChorusModel
@testable import ChorusStorage
import ChorusTransport
import ChorusWire
import Foundation
import SwiftProtobuf
import Testing

@Suite struct StoreTests {
    func tempDir() -> String {
        let d = NSTemporaryDirectory() + "chorus-test-" + UUID().uuidString
        return d
    }

    /// The figures `/metrics` reads from RocksDB, on a real store.
    @Test func engineStatsReadRocksDBsProperties() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Store(path: dir)
        var b = WriteBatch()
        for i: UInt8 in 0..<100 { b.put([0, 0, 0, 1, 1, i], [i]) }
        try s.write(b, sync: true)
        let e = try #require(s.engineStats())
        #expect(!e.writeStopped && e.delayedWriteRate == 0)
        #expect(e.stallSeconds == 0, "a fresh store has not stalled; rocksdb.dbstats must parse")
        #expect(Store.cumulativeStallSeconds("Uptime(secs): 3.0\nCumulative stall: 01:02:03.500 H:M:S, 0.0 percent\n") == 3723.5)
        #expect(Store.cumulativeStallSeconds("nothing here") == nil)
        s.close()
        #expect(s.engineStats() == nil)
    }

    @Test func putGetScanDeleteRange() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let s = try Store(path: dir)
        var b = WriteBatch()
        for p: UInt8 in 0..<3 {
            for i: UInt8 in 0..<5 { b.put([0, 0, 0, p, 1, i], [p, i]) }
        }
        try s.write(b, sync: true)
        #expect(try s.get([0, 0, 0, 1, 1, 3]) == [1, 3])
        #expect(try s.get([9]) == nil)
        var seen: [[UInt8]] = []
        try s.scan(prefix: [0, 0, 0, 1]) { k, _ in seen.append(Array(k)); return true }
        #expect(seen.count == 5 && seen.first == [0, 0, 0, 1, 1, 0])
        var d = WriteBatch()
        d.deleteRange(from: [0, 0, 0, 1], to: [0, 0, 0, 2])
        try s.write(d)
        var left = 0
        try s.scan(from: [], to: nil) { _, _ in left += 1; return true }
        #expect(left == 10)
        s.close()
        // Reopen: data survives.
        let s2 = try Store(path: dir)
        #expect(try s2.get([0, 0, 0, 2, 1, 4]) == [2, 4])
    }

    @Test func prefixEnd() {
        #expect(Store.prefixEnd([1, 2]) == [1, 3])
        #expect(Store.prefixEnd([1, 0xFF]) == [2])
        #expect(Store.prefixEnd([0xFF]) == nil)
    }
}

@Suite struct TransportTests {
    static func corr(_ b: [UInt8]) -> UInt64? { b.count >= 8 ? b.prefix(8).reduce(0) { $0 << 8 | UInt64($1) } : nil }

    @Test func requestReplyAndManyInFlight() async throws {
        let server = try RouterServer(bind: "tcp://127.0.0.1:*")
        defer { server.close() }
        let echo = Task {
            for await m in server.messages { server.reply(to: m.peer, m.payload + [0xAA]) }
        }
        defer { echo.cancel() }
        let client = try DealerClient(connect: server.endpoint, correlate: Self.corr)
        defer { client.close() }
        try await withThrowingTaskGroup(of: Void.self) { g in
            for i in 0..<200 {
                g.addTask {
                    var id = UInt64(i).bigEndian
                    let payload = withUnsafeBytes(of: &id) { Array($0) } + [1, 2, 3]
                    let reply = try await client.request(payload, correlationId: UInt64(i), timeout: .seconds(5))
                    #expect(reply == payload + [0xAA])
                }
            }
            try await g.waitForAll()
        }
    }

    @Test func unreachablePeerTimesOutQuickly() async throws {
        let client = try DealerClient(connect: "tcp://127.0.0.1:9", correlate: Self.corr)
        defer { client.close() }
        let start = ContinuousClock.now
        await #expect(throws: TransportError.self) {
            _ = try await client.request([0, 0, 0, 0, 0, 0, 0, 1], correlationId: 1, timeout: .milliseconds(300))
        }
        #expect(ContinuousClock.now - start < .seconds(30))  // it fails with a timeout instead of hanging
    }
}

@Suite struct WireTests {
    @Test func recordsRoundTripThroughProtobuf() throws {
        let i = InteractionRecord(id: "i1", userId: "用户1", contentId: "c1", kind: .conversion, channel: "wechat",
                                  ts: 1_756_684_800, text: "好看 👍", value: 42.5)
        let bytes: [UInt8] = try Wire.encode(i).serializedBytes()
        #expect(Wire.decode(try Chorus_V1_Interaction(serializedBytes: bytes)) == i)
        let c = ContentRecord(id: "c1", authorId: "u1", channel: "x", mediaType: "video", topics: ["a"],
                              hashtags: ["#b"], createdAt: 5, text: "t")
        #expect(Wire.decode(try Chorus_V1_Content(serializedBytes: try Wire.encode(c).serializedBytes() as [UInt8])) == c)
    }

    @Test func interactionsAreWrittenOnBothSides() throws {
        let placement = Placement(partitionCount: 64)
        let i = InteractionRecord(id: "i1", userId: "u1", contentId: "c9", kind: .like, channel: "x", ts: 1_756_684_800)
        let puts = try Wire.puts(for: .interaction(i), placement: placement)
        #expect(puts.count == 2)
        #expect(puts[0].partition == placement.partition(of: "u1") && puts[0].role == .interactionByUser && puts[0].counted)
        #expect(puts[1].partition == placement.partition(of: "c9") && puts[1].role == .interactionByContent
                && !puts[1].counted)
        #expect(Array(puts[0].keyID) == Array("u1".utf8) + [0] + Array("i1".utf8))
    }
}
