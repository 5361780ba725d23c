import ChorusData
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Testing

/// A job kind that gathers the spend history through `TaskContext.spendRecords()`: each partition's task returns
/// its records (JSON), and the driver merges them into totals per channel.
enum SpendGatherJob: Job {
    static let kind = "test-spend-gather"
    static let about = "test job: gather every partition's spend records"
    static let parameters: [JobParameter] = []

    static func drive(_ ctx: JobContext) async throws -> String {
        var all: [SpendRecord] = []
        for out in try await ctx.collect("gather") {
            all += try JSONDecoder().decode([SpendRecord].self, from: out.payload)
        }
        var spend: [String: Double] = [:], conversions: [String: Double] = [:], weeks: [String: Int] = [:]
        for r in all {
            spend[r.channel, default: 0] += r.spend
            conversions[r.channel, default: 0] += r.conversions
            weeks[r.channel, default: 0] += 1
        }
        let json = try JSONSerialization.data(withJSONObject: ["records": all.count, "spend": spend,
                                                               "conversions": conversions, "weeks": weeks],
                                              options: [.sortedKeys])
        return String(decoding: json, as: UTF8.self)
    }

    static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { State() }

    final class State: JobWorker {
        func receive(_ broadcast: JobBroadcast) throws {}
        func run(_ task: TaskContext) async throws -> TaskOutput {
            let records = try await task.spendRecords()
            return TaskOutput(partition: task.partition, payload: try JSONEncoder().encode(records),
                              recordsRead: UInt64(records.count))
        }
    }
}

@Suite(.serialized) struct SpendJobTests {
    /// A generated spend history, ingested in-process, comes back whole through the job SDK's helper.
    @Test func aJobGathersTheIngestedSpendHistory() async throws {
        let cluster = try await InProcessCluster()
        do {
            var files: [GeneratedFile: [UInt8]] = [:]
            let history = SpendHistory(network: SyntheticNetwork(users: 50, seed: 9), weeks: 20)
            try history.write { files[$0, default: []] += $1 }
            let path = cluster.dir + "/spend.jsonl"
            FileManager.default.createFile(atPath: path, contents: Data(files[.spend]!))
            let report = try await Ingestor(client: cluster.client, options: IngestOptions(
                paths: [path], rejectsPath: cluster.dir + "/rejects.jsonl")).run()
            #expect(report.read == 100 && report.stored == 100 && report.rejected == 0)

            let submitted = try await cluster.client.submit(kind: SpendGatherJob.kind, params: [:])
            let job = try await cluster.wait(submitted.id)
            #expect(job.state == .succeeded, "\(job.error)")
            let summary = try JSONSerialization.jsonObject(with: Data(job.summaryJson.utf8)) as? [String: Any] ?? [:]
            #expect(summary["records"] as? Int == 100, "\(summary)")
            let spend = summary["spend"] as? [String: Double] ?? [:]
            let conversions = summary["conversions"] as? [String: Double] ?? [:]
            for s in history.series() {
                #expect(summary["weeks"].flatMap { ($0 as? [String: Int])?[s.curve.channel] } == 20)
                let total = s.records.map(\.spend).reduce(0, +)
                #expect(abs((spend[s.curve.channel] ?? -1) - total) < 1e-6 * max(total, 1), "\(s.curve.channel)")
                #expect(conversions[s.curve.channel] == s.records.map(\.conversions).reduce(0, +))
            }
        } catch {
            await cluster.shutdown()
            throw error
        }
        await cluster.shutdown()
    }
}
