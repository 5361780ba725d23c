import Foundation
import Synchronization

/// A serial executor on one OS thread of its own, for an actor whose methods make blocking calls (synced RocksDB
/// writes): `nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }`.
/// Every method of that actor then runs on this thread, never on the Swift cooperative pool. The pattern is
/// swift-nio's "an actor on a thread you own" (`EventLoop+SerialExecutor.swift`).
///
/// Why: the coordinator's `CoordinatorState` actor fsynced the map, members and job progress inside its
/// methods, on the cooperative pool. On a 2-core machine that pool has 2 threads, so two slow fsyncs leave
/// nothing to answer heartbeats: workers miss their lease, and with one more blocked task the process deadlocks
/// outright (the failure `BlockingQueue` was made for). An actor on a custom executor keeps its serial semantics
/// unchanged: no await is added inside its methods, so there is no new re-entrancy.
///
/// Jobs run in the order they are enqueued, one at a time, on a `BlockingQueue` with a single thread named `label`.
/// The name is for `top -H` and is best effort: Linux refuses names over 15 bytes, and on this toolchain even a
/// short name was seen not to stick now and then (`Thread.current.name` then reads its creator's name, often a pool
/// thread's). To ask whether code runs on the executor's thread, use `isCurrentThread`, not the name.
public final class ThreadExecutor: SerialExecutor {
    private let queue: BlockingQueue
    /// The executor's thread, recorded by its first job.
    private let thread = Mutex<ObjectIdentifier?>(nil)
    public let label: String

    public init(label: String) {
        self.label = label
        queue = BlockingQueue(label: label)
        queue.submit { self.thread.withLock { $0 = ObjectIdentifier(Thread.current) } }  // runs before any job
    }

    /// True when called on the executor's thread (inside the methods of an actor that uses this executor).
    public var isCurrentThread: Bool {
        let current = ObjectIdentifier(Thread.current)
        return thread.withLock { $0 } == current
    }

    public func checkIsolated() {
        precondition(isCurrentThread, "not on the thread of executor \(label)")
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.submit { job.runSynchronously(on: self.asUnownedSerialExecutor()) }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }
}
