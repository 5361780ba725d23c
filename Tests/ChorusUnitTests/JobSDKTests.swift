import ChorusJobs
import ChorusModel
import ChorusRuntime
import ChorusWire
import Foundation
import Logging
import Synchronization
import Testing

/// What the test job kind saw, across its worker states (they live in this process).
let censusLog = Mutex<(released: Set<String>, spinning: Int, receivedSalts: [String], countedOn: Set<String>)>(([], 0, [], []))

/// A job kind defined here, outside the runtime and outside ChorusJobs: it runs on a real coordinator and real
/// workers (in this process, over ZeroMQ on loopback, each with its own RocksDB) through the job SDK alone.
///
/// Stage "count": the driver broadcasts a salt; each partition answers "salt|partition|users" (users stored in
/// the partition) and writes one derived record. With spin=true, a stage "spin" then loops until cancelled.
enum CensusJob: Job {
    static let kind = "test-census"
    static let about = "test job: every partition answers once"
    static let parameters: [JobParameter] = [
        .init("salt", .text(maxBytes: 32), "s", "sent to every worker in the broadcast"),
        .init("spin", .boolean, "false", "then run a stage that only ends when cancelled"),
    ]
    static func tasksPerPartition(_ params: JobParams) -> Int { params.bool("spin", false) ? 2 : 1 }

    static func drive(_ ctx: JobContext) async throws -> String {
        let salt = ctx.params.string("salt", "s")
        let outs = try await ctx.collect("count", broadcast: Broadcast(Data(salt.utf8)))
        var seen: [String] = []
        for o in outs { seen.append(String(decoding: o.payload, as: UTF8.self)) }
        if ctx.params.bool("spin", false) {
            try await ctx.setStage("spinning")
            try await ctx.runStage("spin") { _ in }
        }
        let json = try JSONSerialization.data(withJSONObject: ["answers": seen, "partitions": Int(ctx.partitionCount)],
                                              options: [.sortedKeys])
        return String(decoding: json, as: UTF8.self)
    }

    static func workerState(_ info: WorkerJobInfo) throws -> any JobWorker { State(jobID: info.jobID) }

    final class State: JobWorker {
        let jobID: String
        let salt = Mutex<String?>(nil)
        init(jobID: String) { self.jobID = jobID }

        func receive(_ broadcast: JobBroadcast) throws {
            let s = String(decoding: broadcast.payload, as: UTF8.self)
            salt.withLock { $0 = s }
            censusLog.withLock { $0.receivedSalts.append(s) }
        }

        func release() { censusLog.withLock { _ = $0.released.insert(jobID) } }

        func run(_ task: TaskContext) async throws -> TaskOutput {
            switch task.stage {
            case "count":
                guard let s = salt.withLock({ $0 }) else { throw task.unavailable("the salt") }
                let data = task.data
                let users = try await task.compute { () throws -> Int in
                    var n = 0
                    try data.scan(role: ShardKeys.role(.user)) { _, _ in n += 1; return true }
                    return n
                }
                censusLog.withLock { _ = $0.countedOn.insert(task.workerName) }
                var w = DerivedWrites(partition: task.partition)
                w.put(role: 0x70, id: "census", Array("\(users)".utf8))
                try await task.write(w)
                return TaskOutput(partition: task.partition, payload: Data("\(s)|\(task.partition)|\(users)".utf8))
            case "spin":
                censusLog.withLock { $0.spinning += 1 }
                defer { censusLog.withLock { $0.spinning -= 1 } }
                let ctx = task
                try await task.compute {
                    while true {
                        try ctx.checkCancelled()
                        usleep(1000)
                    }
                }
                return TaskOutput(partition: task.partition)
            default:
                throw TaskContext.invalid("run_task.stage", "no stage \(task.stage)")
            }
        }
    }
}

/// A coordinator and three workers in this process, knowing the standard kinds and the test kind.
final class InProcessCluster: @unchecked Sendable {
    let dir: String
    let coordinator: Coordinator
    let workers: [Worker]
    var tasks: [Task<Void, Never>] = []
    let client: ChorusClient

    init(workers n: Int = 3, partitions: UInt32 = 8) async throws {
        dir = NSTemporaryDirectory() + "chorus-sdk-" + UUID().uuidString
        let registry = JobRegistry(StandardJobs.registry.jobs + [CensusJob.self, SpendGatherJob.self])
        var log = Logger(label: "test")
        log.logLevel = .error
        var co = CoordinatorOptions(bind: "tcp://127.0.0.1:*", dataDir: dir + "/coordinator", partitions: partitions,
                                    replication: 1)
        co.jobs = registry
        coordinator = try Coordinator(options: co, logger: log)
        var ws: [Worker] = []
        for i in 1...n {
            var wo = WorkerOptions(coordinator: coordinator.endpoint, bind: "tcp://127.0.0.1:*",
                                   dataDir: dir + "/worker-\(i)", name: "worker-\(i)", cores: 1)
            wo.jobs = registry
            ws.append(try Worker(options: wo, logger: log))
        }
        workers = ws
        client = try ChorusClient(coordinator: coordinator.endpoint, security: .insecure)
        let c = coordinator
        tasks.append(Task { await c.run() })
        for w in ws { tasks.append(Task { await w.run() }) }
        let due = ContinuousClock.now + .seconds(30)
        while true {
            let s = try? await client.clusterStatus()
            if let s, s.nodes.filter({ $0.state == .active }).count == n, s.unassignedPartitions == 0 { break }
            if ContinuousClock.now > due { throw ChorusError(.unavailable, "in-process cluster did not settle") }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    func wait(_ id: String, seconds: Double = 60) async throws -> Chorus_V1_JobInfo {
        let due = ContinuousClock.now + .seconds(seconds)
        while true {
            let j = try await client.jobStatus(id)
            if [.succeeded, .failed, .cancelled].contains(j.state) { return j }
            if ContinuousClock.now > due { throw ChorusError(.unavailable, "job \(id) still \(j.state) after \(seconds) s") }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    func shutdown() async {
        client.close()
        for w in workers { w.shutdown() }
        coordinator.shutdown()
        for t in tasks { t.cancel() }
        for t in tasks { await t.value }
        for w in workers { w.closeStore() }
        coordinator.closeStore()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

@Suite(.serialized) struct JobSDKTests {
    @Test func aJobKindDefinedOutsideTheRuntimeRunsEndToEnd() async throws {
        let cluster = try await InProcessCluster()
        do {
            let submitted = try await cluster.client.submit(kind: CensusJob.kind, params: ["salt": "pepper"])
            #expect(submitted.tasksTotal == 8)
            let job = try await cluster.wait(submitted.id)
            #expect(job.state == .succeeded, "\(job.error)")
            #expect(job.tasksDone == 8)
            let summary = try JSONSerialization.jsonObject(with: Data(job.summaryJson.utf8)) as? [String: Any] ?? [:]
            // Every partition answered once, in partition order, with the broadcast salt.
            #expect(summary["answers"] as? [String] == (0..<8).map { "pepper|\($0)|0" }, "\(summary)")
            // The broadcast went once to each worker that ran tasks (one incarnation each), not once per task.
            let (salts, workers) = censusLog.withLock { ($0.receivedSalts.filter { $0 == "pepper" }.count, $0.countedOn.count) }
            #expect(salts == workers && workers >= 1 && workers <= 3, "\(salts) broadcasts for \(workers) workers")
            // The job's worker state was dropped everywhere when it ended, and release() was called.
            let due = ContinuousClock.now + .seconds(3)
            while cluster.workers.contains(where: { !$0.liveJobIDs.isEmpty }), ContinuousClock.now < due {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(cluster.workers.allSatisfy { $0.liveJobIDs.isEmpty })
            #expect(censusLog.withLock { $0.released.contains(job.id) })

            // Parameters are checked against the kind's own declarations at submit.
            await #expect(throws: ChorusError.self) {
                _ = try await cluster.client.submit(kind: CensusJob.kind, params: ["salty": "x"])
            }
            do {
                _ = try await cluster.client.submit(kind: CensusJob.kind, params: ["spin": "maybe"])
                Issue.record("a bad boolean was accepted")
            } catch let e as ChorusError {
                #expect(e.exitCode == 64 && e.message.contains("spin"), "\(e)")
            }
        } catch {
            await cluster.shutdown()
            throw error
        }
        await cluster.shutdown()
    }

    @Test func cancelStopsRunningTasksWithinASecondAndDropsTheirState() async throws {
        let cluster = try await InProcessCluster()
        do {
            let submitted = try await cluster.client.submit(kind: CensusJob.kind, params: ["spin": "true"])
            // Wait until the spin stage runs on every partition (all 8 tasks wait in or run their compute block).
            let due = ContinuousClock.now + .seconds(20)
            while censusLog.withLock({ $0.spinning }) < 8 {
                if ContinuousClock.now > due { Issue.record("the spin stage never ran"); break }
                try await Task.sleep(for: .milliseconds(20))
            }
            // The job's state is on the workers that run its tasks (a worker may hold no partition yet).
            let holding = cluster.workers.filter { !$0.liveJobIDs.isEmpty }
            #expect(!holding.isEmpty && holding.allSatisfy { $0.liveJobIDs == [submitted.id] })
            let start = ContinuousClock.now
            let cancelled = try await cluster.client.cancel(submitted.id)
            #expect(cancelled.state == .cancelled)
            while censusLog.withLock({ $0.spinning }) > 0 || cluster.workers.contains(where: { !$0.liveJobIDs.isEmpty }) {
                if ContinuousClock.now - start > .seconds(1) { break }
                try await Task.sleep(for: .milliseconds(10))
            }
            let took = ContinuousClock.now - start
            #expect(censusLog.withLock { $0.spinning } == 0, "tasks still running \(took) after cancel")
            #expect(cluster.workers.allSatisfy { $0.liveJobIDs.isEmpty }, "job state still held \(took) after cancel")
            #expect(took < .seconds(1), "cancel took \(took)")
            let final = try await cluster.wait(submitted.id)
            #expect(final.state == .cancelled)
        } catch {
            await cluster.shutdown()
            throw error
        }
        await cluster.shutdown()
    }
}
