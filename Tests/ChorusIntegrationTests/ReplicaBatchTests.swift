import ChorusTransport
import ChorusWire
import Foundation
import Testing

/// `replica_batch` on a real worker: a batch is parsed whole before anything is written, and only the partition's
/// primary may send one.
@Suite(.serialized) struct ReplicaBatchTests {
    @Test func aWorkerRefusesMalformedOrForeignReplicaBatchesAndKeepsServing() async throws {
        let cluster = try TestCluster(workers: 2, partitions: 4, replication: 2)
        defer { cluster.shutdown() }
        let client = try DealerClient(connect: cluster.workers[1].endpoint,
                                      curve: try TestKeys.client("worker", server: "worker")) { b in
            (try? Chorus_V1_Response(serializedBytes: b))?.correlationID
        }
        defer { client.close() }
        var next: UInt64 = 1000
        func send(_ rb: Chorus_V1_ReplicaBatch) async throws -> String? {
            var req = Chorus_V1_Request()
            next += 1
            req.correlationID = next
            req.replicaBatch = rb
            let reply = try await client.request(try req.serializedBytes(), correlationId: next, timeout: .seconds(10))
            let resp = try Chorus_V1_Response(serializedBytes: reply)
            if case let .error(e)? = resp.body { return e.message }
            return nil
        }
        let key: [UInt8] = [0, 0, 0, 0, 1] + Array("intruder".utf8)
        // A rocksdb::WriteBatch rep, written by hand (this target does not link RocksDB): a 12-byte header (sequence
        // number, then the record count, little-endian), then records: a type byte (1 put, 0 delete) and
        // varint-length-prefixed key (and value).
        func rep(_ records: [(put: Bool, key: [UInt8])]) -> Data {
            var out = [UInt8](repeating: 0, count: 12)
            out[8] = UInt8(records.count)
            func bytes(_ b: [UInt8]) { out.append(UInt8(b.count)); out += b }
            for r in records {
                out.append(r.put ? 1 : 0)
                bytes(r.key)
                if r.put { bytes([1]) }
            }
            return Data(out)
        }
        func batch(_ records: [(put: Bool, key: [UInt8])]) -> Chorus_V1_ReplicaBatch {
            var rb = Chorus_V1_ReplicaBatch()
            rb.primary = "w-impostor"
            rb.batch = rep(records)
            rb.count = UInt32(records.count)
            return rb
        }
        // A delete hidden in the batch: refused before the sender's role is even looked at.
        let withDelete = batch([(true, key), (false, key + [0])])
        let m1 = try await send(withDelete)
        #expect(m1?.contains("replica_batch.batch") == true && m1?.contains("a delete") == true, "\(m1 ?? "accepted")")
        // A count that does not match the batch.
        var miscounted = batch([(true, key)])
        miscounted.count = 2
        let m2 = try await send(miscounted)
        #expect(m2?.contains("replica_batch.count") == true, "\(m2 ?? "accepted")")
        // Bytes that are not a batch.
        var garbage = batch([(true, key)])
        garbage.batch = Data(repeating: 0xAB, count: 40)
        let m3 = try await send(garbage)
        #expect(m3?.contains("replica_batch.batch") == true, "\(m3 ?? "accepted")")
        // A transaction marker, which RocksDB's own iterator would assert on (and abort the process).
        var marker = batch([(true, key)])
        marker.batch = Data([UInt8](repeating: 0, count: 8) + [1, 0, 0, 0, 0x0D])
        let m5 = try await send(marker)
        #expect(m5?.contains("a transaction marker") == true, "\(m5 ?? "accepted")")
        // Well-formed, but from a node that is not the partition's primary.
        let m4 = try await send(batch([(true, key)]))
        #expect(m4?.contains("stale primary") == true, "\(m4 ?? "accepted")")
        #expect(cluster.workers[1].isRunning, "\(cluster.logs())")
        // The worker still takes part in replicated ingest: every record stored once, a second ingest stores none.
        let gen = cluster.dir + "/gen"
        #expect(try chorus(["generate", "--users", "40", "--seed", "3", "--out", gen]).status == 0)
        let ing = try chorus(["ingest", "--coordinator", cluster.address, "--json", gen + "/users.jsonl",
                              gen + "/interactions.jsonl"])
        #expect(ing.status == 0 && ing.json["rejected"] as? Int == 0, "\(ing.stderr)\n\(cluster.logs())")
        let again = try chorus(["ingest", "--coordinator", cluster.address, "--json", gen + "/users.jsonl"])
        #expect(again.json["stored"] as? Int == 0 && again.json["duplicates"] as? Int == 40, "\(again.stdout)")
    }
}
