@testable import ChorusRuntime
import ChorusStorage
import Synchronization
import Testing

/// A stage's broadcast reaches each worker incarnation once, however many tasks are dispatched to it at the same
/// time; a failed send is retried by the next task.
@Suite struct BroadcastTrackerTests {
    final class Counter: Sendable {
        let sends = Mutex(0)
    }

    struct SendFailed: Error {}

    @Test func concurrentTasksShareOneSendPerIncarnation() async throws {
        let tracker = BroadcastTracker()
        let counter = Counter()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    try await tracker.ensure("w1", 1) {
                        counter.sends.withLock { $0 += 1 }
                        try await Task.sleep(for: .milliseconds(50))  // the other tasks arrive while it is in flight
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(counter.sends.withLock { $0 } == 1)
        // A new incarnation (the worker restarted) gets its own send.
        try await tracker.ensure("w1", 2) { counter.sends.withLock { $0 += 1 } }
        #expect(counter.sends.withLock { $0 } == 2)
    }

    @Test func aFailedSendIsRetriedByTheNextTask() async throws {
        let tracker = BroadcastTracker()
        let counter = Counter()
        await #expect(throws: SendFailed.self) {
            try await tracker.ensure("w1", 1) {
                counter.sends.withLock { $0 += 1 }
                throw SendFailed()
            }
        }
        try await tracker.ensure("w1", 1) { counter.sends.withLock { $0 += 1 } }
        try await tracker.ensure("w1", 1) { counter.sends.withLock { $0 += 1 } }
        #expect(counter.sends.withLock { $0 } == 2)
    }

    @Test func blockingQueueRunsJobsInOrderOnItsOwnThread() async throws {
        let q = BlockingQueue(label: "test.serial")
        let seen = Mutex<[Int]>([])
        for i in 0..<100 { q.submit { seen.withLock { $0.append(i) } } }
        q.drain()
        #expect(seen.withLock { $0 } == Array(0..<100))
        let v = try await q.run { 41 + 1 }
        #expect(v == 42)
    }
}
