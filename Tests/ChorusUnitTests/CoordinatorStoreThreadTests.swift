import ChorusJobs
@testable import ChorusRuntime
import ChorusStorage
import Foundation
import Testing

/// An actor on a `ThreadExecutor`, recording where each call ran.
private actor Recorder {
    nonisolated let executor = ThreadExecutor(label: "test.recorder")
    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    var calls: [Int] = []
    var offThread = 0
    var inside = 0
    var overlapped = false

    func record(_ i: Int) {
        inside += 1
        if inside > 1 { overlapped = true }
        if !executor.isCurrentThread { offThread += 1 }
        calls.append(i)
        inside -= 1
    }
}

/// The coordinator's synced RocksDB writes (map, members, job progress) run on a thread the coordinator owns, not
/// on the Swift cooperative pool: on 2 cores a pool thread blocked in fsync left heartbeats waiting.
@Suite struct CoordinatorStoreThreadTests {
    @Test func coordinatorStateMethodsAndTheirStoreWritesRunOnTheStateThread() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-state-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try Store(path: dir.path)
        defer { store.close() }
        let state = try CoordinatorState(store: store, partitionCount: 4, replicationFactor: 1,
                                         timing: MembershipTiming(), limits: MoveLimits(), security: .insecure)
        #expect(!state.executor.isCurrentThread)  // the test itself runs on the cooperative pool
        #expect(await state.runsOnStateThread())
        // Methods that make synced puts (meta/job_seq, then the job) run there too, and their writes are durable.
        let job = try await state.createJob(kind: "features", params: [:], registry: StandardJobs.registry)
        #expect(try store.get(Array("job/\(job.id)".utf8)) != nil)
        #expect(try store.get(Array("meta/job_seq".utf8)) == Array("1".utf8))
        _ = try await state.update(job.id) { $0.stage = "catalog" }
        #expect(try await state.job(job.id).stage == "catalog")
        #expect(await state.runsOnStateThread())
    }

    @Test func anActorOnAThreadExecutorRunsSeriallyOnThatThread() async throws {
        let r = Recorder()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<200 { group.addTask { await r.record(i) } }
        }
        let calls = await r.calls, offThread = await r.offThread, overlapped = await r.overlapped
        #expect(calls.count == 200)
        #expect(Set(calls) == Set(0..<200))
        #expect(offThread == 0)
        #expect(overlapped == false)
        #expect(!r.executor.isCurrentThread)
    }
}
