import Foundation

/// Runs blocking work (RocksDB calls, CPU-heavy loops) on threads of its own, never on the Swift cooperative pool
/// nor on Dispatch's global queues, and bridges the result back to async code with a continuation.
///
/// Why not a Dispatch queue: on Linux the Swift global executor runs async jobs on Dispatch's global root queues,
/// which allow about one running thread per core for CPU-bound work. A Dispatch queue of minutes-long compute
/// blocks therefore shared that pool with every async task of the process: heartbeats and RPC replies waited
/// behind the compute, the worker's lease expired and the coordinator saw it as suspect (seen with the `als`
/// evaluation on 3 M interactions, 3 workers on 2 cores). Dedicated threads leave the async pool free.
public final class BlockingQueue: @unchecked Sendable {
    // SAFETY: `jobs` and `head` are only touched with `condition` locked; the threads are started once in init.
    // A job's slot is cleared as soon as it is taken, so nothing it captured (factor matrices, batches) outlives it.
    private let condition = NSCondition()
    private var jobs: [(() -> Void)?] = []
    private var head = 0

    /// A queue with one thread (serial: jobs run in submission order), or `threads` threads when concurrent
    /// (default: one per core).
    public init(label: String, concurrent: Bool = false, threads: Int? = nil) {
        let n = concurrent ? max(1, threads ?? ProcessInfo.processInfo.activeProcessorCount) : 1
        for i in 0..<n {
            let name = n == 1 ? label : "\(label).\(i)"
            let t = Thread { [condition] in
                Thread.current.name = name  // on Linux this names the OS thread (seen in top -H and perf)
                while true {
                    condition.lock()
                    while self.head == self.jobs.count { condition.wait() }
                    let job = self.jobs[self.head]
                    self.jobs[self.head] = nil
                    self.head += 1
                    if self.head == self.jobs.count {
                        self.jobs.removeAll(keepingCapacity: true)
                        self.head = 0
                    } else if self.head > 1024, self.head * 2 > self.jobs.count {
                        self.jobs.removeFirst(self.head)
                        self.head = 0
                    }
                    condition.unlock()
                    job?()
                }
            }
            t.start()
        }
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            submit {
                do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
            }
        }
    }

    /// Runs `body` later, without waiting for it.
    public func submit(_ body: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(body)
        condition.signal()
        condition.unlock()
    }

    /// Waits until everything submitted so far has run (serial queues).
    public func drain() {
        let done = DispatchSemaphore(value: 0)
        submit { done.signal() }
        done.wait()
    }
}
