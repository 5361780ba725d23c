import Foundation
import Testing

/// Network partitions between real hosts: `scripts/netpartition.sh --short` puts the coordinator, 4 workers (R=2)
/// and the clients in network namespaces of their own on a bridge, cuts links during a continuous ingest and a
/// `features` job, heals, and checks every acknowledged id and the job's result against an undisturbed run
/// (scenarios 1, an isolated worker; 2, the coordinator cut off from the workers; 3, a worker cut off from its
/// replica partners). All 5 scenarios run from the script (docs/operations.md "Network partitions").
/// Needs root, iproute2 and nftables (scripts/install-deps.sh installs them).
@Suite(.serialized, .enabled(if: geteuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/nft"),
                             "network namespaces and nft need root and nftables"))
struct NetworkPartitionTests {
    @Test func anIsolatedWorkerACutOffCoordinatorAndAWorkerCutFromItsPartnersLoseNothing() throws {
        let out = NSTemporaryDirectory() + "chorus-netpartition-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: out) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        let r = try run("/bin/bash", [root + "/scripts/netpartition.sh", "--short", "--bin", Binary.chorus, "--out", out],
                        timeout: 400)
        #expect(r.status == 0, "\(r.stdout)\n\(r.stderr.suffix(4000))")
        let rows = ((try? String(contentsOfFile: out + "/results.jsonl", encoding: .utf8)) ?? "")
            .split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(rows.map { $0["scenario"] as? Int ?? 0 } == [1, 2, 3], "\(r.stdout)")
        for row in rows {
            let what = "scenario \(row["scenario"] ?? "?"): \(row["notes"] ?? "")"
            #expect((row["acknowledged"] as? Int ?? 0) > 0, "\(what)")
            #expect(row["lost"] as? Int == 0, "\(what)")
            #expect(row["duplicated"] as? Int == 0, "\(what)")
            #expect((row["notes"] as? String ?? "").contains("job across the cut: succeeded"), "\(what)")
            #expect((row["notes"] as? String ?? "").contains("its profiles equal the undisturbed run"), "\(what)")
        }
    }
}
