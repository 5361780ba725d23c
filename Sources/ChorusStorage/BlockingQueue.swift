import Dispatch

/// Runs blocking work (RocksDB calls, CPU-heavy loops) on Dispatch threads, never on the Swift cooperative pool,
/// and bridges the result back to async code with a continuation.
public struct BlockingQueue: Sendable {
    private let queue: DispatchQueue

    public init(label: String, concurrent: Bool = false) {
        queue = DispatchQueue(label: label, qos: .default, attributes: concurrent ? .concurrent : [])
    }

    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { cont in
            queue.async {
                do { cont.resume(returning: try body()) } catch { cont.resume(throwing: error) }
            }
        }
    }

    /// Runs `body` later, without waiting for it.
    public func submit(_ body: @escaping @Sendable () -> Void) { queue.async(execute: body) }

    /// Waits until everything submitted so far has run (serial queues).
    public func drain() { queue.sync {} }
}
