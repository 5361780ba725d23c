import Foundation
import Testing

/// The protobuf contract: committed Swift code is fresh, and a C client built with protoc-c talks to a real
/// coordinator (the contract is language-neutral).
@Suite(.serialized) struct ContractTests {
    @Test func generatedSwiftCodeIsNotStale() throws {
        let r = try run("/bin/bash", [Binary.root + "/proto/generate.sh", "--check"], timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("up to date"))
    }

    @Test func cClientReadsClusterStatus() throws {
        let out = NSTemporaryDirectory() + "chorus-cclient-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let build = try run("/bin/bash", [Binary.root + "/clients/c/build.sh", out], timeout: 120)
        #expect(build.status == 0, "C client build failed: \(build.stderr)")
        let cluster = try TestCluster(workers: 2, partitions: 8)
        defer { cluster.shutdown() }
        let r = try run(out + "/chorus-status", [cluster.address, "3000"])
        #expect(r.status == 0, "\(r.stderr)")
        let kv = Dictionary(r.stdout.split(separator: "\n").compactMap { line -> (String, String)? in
            let p = line.split(separator: "=", maxSplits: 1)
            return p.count == 2 && !line.hasPrefix("node ") ? (String(p[0]), String(p[1])) : nil
        }, uniquingKeysWith: { a, _ in a })
        let swiftView = try chorus(["cluster", "status", "--coordinator", cluster.address, "--json"]).json
        #expect(kv["coordinator_id"] == swiftView["coordinator_id"] as? String)
        #expect(kv["partition_count"] == "8")
        #expect(kv["nodes"] == "2")
        #expect(kv["unassigned_partitions"] == "0")
        let nodeLines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("node ") }
        #expect(nodeLines.count == 2)
        #expect(nodeLines.allSatisfy { $0.contains("state=NODE_STATE_ACTIVE") })
        #expect(Set(nodeLines.compactMap { $0.split(separator: " ").first { $0.hasPrefix("name=") } }) == ["name=w1", "name=w2"])
        // Unreachable endpoint: clear error, exit 3, no hang.
        let dead = try run(out + "/chorus-status", ["tcp://127.0.0.1:9", "300"], timeout: 10)
        #expect(dead.status == 3 && dead.stderr.contains("no reply"))
    }
}
