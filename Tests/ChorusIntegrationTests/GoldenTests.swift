import ChorusModel
import Foundation
import Testing

/// Outputs pinned across the move of the job kinds onto the job SDK (issue 12): with the same generated data, seed
/// and as_of, the profiles, the content features' summary, the ALS factors and a trained sentiment model are the
/// same as the engine before the SDK gave. The pinned values were taken from commit d240183 (before the move) by
/// running this suite with CHORUS_GOLDEN_PRINT=1, which prints the observed values instead of checking them.
@Suite(.serialized) struct GoldenTests {
    static let printing = ProcessInfo.processInfo.environment["CHORUS_GOLDEN_PRINT"] == "1"

    /// FNV-1a 64 of the text, in hex.
    static func digest(_ s: String) -> String { String(StableHash.fnv1a64(Array(s.utf8)), radix: 16) }

    static func check(_ name: String, _ observed: String, _ pinned: String) {
        if printing { print("GOLDEN \(name) = \(observed)") } else { #expect(observed == pinned, "\(name)") }
    }

    static func check(_ name: String, _ observed: [Double], _ pinned: [Double], tolerance: Double) {
        if printing {
            print("GOLDEN \(name) = \(observed.map { String(format: "%.6f", $0) }.joined(separator: ", "))")
            return
        }
        #expect(observed.count == pinned.count, "\(name): \(observed.count) values, pinned \(pinned.count)")
        for (i, (o, p)) in zip(observed, pinned).enumerated() {
            #expect(abs(o - p) <= tolerance, "\(name)[\(i)]: \(o), pinned \(p)")
        }
    }

    @Test func featuresAndALSOutputsAreThoseOfTheEngineBeforeTheSDK() throws {
        let cluster = try TestCluster(workers: 3, partitions: 8)
        defer { cluster.shutdown() }
        try cluster.ingestGenerated(users: 400, seed: 31)
        let a = cluster.address
        let f = try chorus(["job", "submit", "features", "--as-of", "1759104000", "--wait", "--json", "--coordinator", a],
                           timeout: 300)
        #expect(f.status == 0, "\(f.stderr)")
        let summary = f.json["summary"] as? [String: Any] ?? [:]
        let summaryText = String(decoding: try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys]),
                                 as: UTF8.self)
        let export = cluster.dir + "/profiles.jsonl"
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", export]).status == 0)
        let lines = try String(contentsOfFile: export, encoding: .utf8).split(separator: "\n").map(String.init).sorted()
        Self.check("features.profiles.count", String(lines.count), "400")
        Self.check("features.profiles.digest", Self.digest(lines.joined(separator: "\n")), "f0f96cb76953d3f7")
        Self.check("features.summary.digest", Self.digest(summaryText), "265be08674d0a784")

        let als = try chorus(["job", "submit", "als", "--param", "mode=implicit", "--param", "rank=4",
                              "--param", "iterations=3", "--param", "seed=7", "--wait", "--json", "--coordinator", a],
                             timeout: 300)
        #expect(als.status == 0, "\(als.stderr)")
        let report = als.json["summary"] as? [String: Any] ?? [:]
        Self.check("als.metrics", ["precision_at_k", "recall_at_k", "ndcg_at_k", "map_at_k"].map { report[$0] as? Double ?? -1 },
                   [0.040678, 0.338983, 0.186799, 0.133253], tolerance: 1e-6)
        var factors: [Double] = []
        for u in ["u0000001", "u0000017", "u0000203"] {
            let p = try chorus(["profile", "get", u, "--json", "--coordinator", a]).json
            factors += (p["embedding"] as? [Double] ?? [])
            // Every stored part names the job that wrote it.
            if !Self.printing {
                let by = p["produced_by"] as? [String: String] ?? [:]
                #expect(by["profile"] == f.json["id"] as? String && by["embedding"] == als.json["id"] as? String, "\(by)")
            }
        }
        Self.check("als.factors", factors, [6.041707, 2.252726, -0.218084, -2.664492, 1.678190, -1.118679, -3.599880,
                                            -10.688374, 5.650500, -8.014300, -2.700669, -2.225611], tolerance: 1e-5)
    }

    @Test func aTrainedSentimentModelIsTheOneTheEngineBeforeTheSDKTrained() throws {
        let dir = NSTemporaryDirectory() + "chorus-golden-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let labels = try SentimentTrainingTests.fixture(dir)
        let cluster = try TestCluster(workers: 3, partitions: 8, replication: 1)
        defer { cluster.shutdown() }
        let r = try chorus(["model", "train", "sentiment", "--coordinator", cluster.address, "--labels", labels,
                            "--iterations", "25", "--dimensions", "4096", "--name", "golden", "--out", dir + "/m.chsm",
                            "--json"], timeout: 300)
        #expect(r.status == 0, "\(r.stderr)")
        let parameters = try SentimentTrainingTests.parameters(dir + "/m.chsm")
        Self.check("sentiment.parameters.count", String(parameters.count), "12291")
        Self.check("sentiment.parameters.digest",
                   Self.digest(parameters.map { String($0.bitPattern, radix: 16) }.joined(separator: ",")), "edfc85b1690b9639")
    }
}
