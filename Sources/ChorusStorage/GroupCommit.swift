import Dispatch
import Synchronization

/// Group commit: writes go to RocksDB without waiting for the disk, and each writer then waits for one WAL fsync
/// that covers its write. Writers that arrive while an fsync runs share the next one, so the serial write queue
/// never waits for the disk and many batches cost one fsync.
public final class GroupCommit: Sendable {
    private let store: Store
    private let queue = DispatchQueue(label: "chorus.wal-sync")
    /// Sequence of the last write that returned (bumped by `noteWritten`, on the write queue).
    private let written = Atomic<UInt64>(0)
    /// Everything up to this sequence is on disk.
    private let synced = Atomic<UInt64>(0)

    public init(store: Store) { self.store = store }

    /// Call right after a write returned; gives the ticket to wait for.
    public func noteWritten() -> UInt64 { written.wrappingAdd(1, ordering: .sequentiallyConsistent).newValue }

    /// Returns once the write with `ticket` is durable.
    public func waitDurable(_ ticket: UInt64) async throws {
        try await withCheckedThrowingContinuation { (cont: CheckedContinuation<Void, any Error>) in
            queue.async { [self] in
                if synced.load(ordering: .sequentiallyConsistent) >= ticket { cont.resume(); return }
                let target = written.load(ordering: .sequentiallyConsistent)
                do {
                    try store.syncWAL()
                    synced.store(target, ordering: .sequentiallyConsistent)
                    cont.resume()
                } catch {
                    cont.resume(throwing: error)
                }
            }
        }
    }
}
