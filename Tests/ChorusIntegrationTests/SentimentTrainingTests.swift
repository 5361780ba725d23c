import Foundation
import Testing

/// `chorus model train sentiment` on real coordinator and worker processes.
@Suite(.serialized) struct SentimentTrainingTests {
    /// A small self-written labelled file (English and Chinese), with one bad record on line 3.
    static func fixture(_ dir: String) throws -> String {
        var lines = ["label,text", "positive,I love this phone", "happy,this label does not exist"]
        let pos = ["love it", "great service", "works perfectly", "so happy with it", "best purchase ever", "amazing quality",
                   "非常好用", "很满意", "质量很好"]
        let neg = ["hate it", "terrible service", "broke after a day", "so disappointed", "worst purchase ever", "awful quality",
                   "太差了", "很失望", "质量不好"]
        let neu = ["arrived on tuesday", "it is blue", "the box has a manual", "ordered two of them", "shipping took a week",
                   "comes in three sizes", "今天到货", "蓝色的", "有说明书"]
        for i in 0..<8 {
            for (label, texts) in [("positive", pos), ("negative", neg), ("neutral", neu)] {
                for t in texts { lines.append("\(label),\"\(t) #\(i)\"") }
            }
        }
        let path = dir + "/labels.csv"
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The float32 parameters of a model file (layout in docs/sentiment.md).
    static func parameters(_ path: String) throws -> [Float] {
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        #expect(b.count > 16 && String(decoding: b[0..<8], as: UTF8.self) == "CHORUSSM")
        func u32(_ i: Int) -> UInt32 { UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24 }
        let start = 16 + Int(u32(12))
        return stride(from: start, to: b.count, by: 4).map { Float(bitPattern: u32($0)) }
    }

    func train(workers: Int, labels: String, out: String) throws -> (TestCluster, Result) {
        let cluster = try TestCluster(workers: workers, partitions: 8, replication: 1)
        let r = try chorus(["model", "train", "sentiment", "--coordinator", cluster.address, "--labels", labels,
                            "--iterations", "25", "--dimensions", "4096", "--name", "fixture", "--out", out, "--json"],
                           timeout: 300)
        return (cluster, r)
    }

    @Test func oneAndThreeWorkersTrainTheSameModelAndItIsStoredAndDescribed() throws {
        let dir = NSTemporaryDirectory() + "chorus-st-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let labels = try Self.fixture(dir)

        let (c1, r1) = try train(workers: 1, labels: labels, out: dir + "/m1.chsm")
        defer { c1.shutdown() }
        #expect(r1.status == 0, "\(r1.stderr)\n\(c1.logs())")
        // Progress per epoch, and the bad record reported with file:line:reason and counted.
        #expect(r1.stderr.contains("sentiment-train: epoch"), "\(r1.stderr)")
        #expect(r1.stderr.contains("labels.csv:3: unknown label"), "\(r1.stderr)")
        #expect(r1.stderr.contains("rejected 1"), "\(r1.stderr)")
        let info = r1.json
        #expect(info["name"] as? String == "fixture" && info["version"] as? Int == 1)
        let held = info["held_out"] as? [[String: Any]] ?? []
        #expect(held.first?["set"] as? String == "labels" && (held.first?["examples"] as? Int ?? 0) > 0, "\(info)")
        #expect((held.first?["accuracy"] as? Double ?? 0) > 0.6, "\(held)")
        #expect((info["sources"] as? [[String: Any]])?.first?["rejected"] as? Int == 1)

        // Stored by the coordinator: list and show describe it.
        let list = try chorus(["model", "list", "--coordinator", c1.address])
        #expect(list.status == 0 && list.stdout.contains("fixture v1"), "\(list.stdout)")
        let show = try chorus(["model", "show", "fixture", "--coordinator", c1.address])
        #expect(show.stdout.contains("held-out metrics") && show.stdout.contains("labels.csv"), "\(show.stdout)")

        // Training again ingests nothing twice and stores version 2.
        let again = try chorus(["model", "train", "sentiment", "--coordinator", c1.address, "--labels", labels,
                                "--iterations", "3", "--dimensions", "4096", "--name", "fixture", "--json"], timeout: 300)
        #expect(again.status == 0 && again.json["version"] as? Int == 2, "\(again.stderr)")
        #expect(again.stderr.contains("stored 0, duplicates"), "\(again.stderr)")

        let (c3, r3) = try train(workers: 3, labels: labels, out: dir + "/m3.chsm")
        defer { c3.shutdown() }
        #expect(r3.status == 0, "\(r3.stderr)\n\(c3.logs())")
        // Partition sums are added in partition order, so the documented tolerance (1e-6 per weight) is met with
        // room to spare: the weights are identical.
        let a = try Self.parameters(dir + "/m1.chsm"), b = try Self.parameters(dir + "/m3.chsm")
        #expect(a.count == 3 * 4096 + 3 && a.count == b.count)
        let diff = zip(a, b).map { abs($0 - $1) }.max() ?? 1
        #expect(diff <= 1e-6, "max weight difference \(diff)")
        #expect(a.contains { $0 != 0 })
    }
}
