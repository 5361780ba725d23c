import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation

/// Full disks. A write, WAL sync or flush that fails (ENOSPC, an I/O error) puts the store in a read-only state
/// (see `Store`): the worker then refuses writes with a clear "disk full on worker NAME (path)" error, keeps serving
/// reads and tasks that do not write, and tells the coordinator in its heartbeats, which stops placing copies on it
/// and hands its partitions to other copies where R allows. `storageWatchLoop` reopens the store once free space is
/// back above the reserve, without a restart. Below the reserve (`--min-free-mib`) the worker warns and takes no new
/// partition copies, before the disk is actually full. See docs/operations.md "Full disks".
extension Worker {
    /// The data directory's disk as reported in heartbeats.
    func storageHealth() -> Chorus_V1_StorageHealth {
        var h = Chorus_V1_StorageHealth()
        h.path = options.dataDir
        h.reserveBytes = options.minFreeBytes
        if let space = store.diskSpace() {
            h.freeBytes = space.free
            h.totalBytes = space.total
        }
        if let failure = store.readOnlyReason {
            h.state = .readOnly
            h.reason = (failure.diskFull ? "disk full: " : "storage error: ") + String(failure.message.prefix(300))
        } else if h.totalBytes > 0, h.freeBytes < options.minFreeBytes {
            h.state = .low
        }
        return h
    }

    /// The error a refused or failed write gives its sender.
    func diskError(_ failure: StorageError) -> ChorusError {
        let what = failure.diskFull ? "disk full" : "storage read-only after a failed write"
        return ChorusError(.storage, "\(what) on worker \(name) (\(options.dataDir)): \(failure.message.prefix(300))",
                           hint: failure.diskFull
                            ? "free space on that disk (or grow it): the worker resumes writes by itself once more "
                                + "than \(options.minFreeBytes >> 20) MiB are free; then run the same command again, it "
                                + "counts nothing twice"
                            : "see the worker's log; it retries opening its store once more than "
                                + "\(options.minFreeBytes >> 20) MiB are free")
    }

    /// Refuses a write before any work when the store is read-only.
    func checkWritable() throws {
        if let failure = store.readOnlyReason { throw diskError(failure) }
    }

    /// Runs a store write (or sync), turning a storage failure into the operator-facing error.
    func storageWrite<T>(_ body: () throws -> T) throws -> T {
        do {
            return try body()
        } catch let e as StorageError {
            throw storageFailure(e)
        }
    }

    /// Waits for the shared WAL sync of a write, with the same error mapping.
    func waitDurable(_ ticket: UInt64) async throws {
        do {
            try await commit.waitDurable(ticket)
        } catch let e as StorageError {
            throw storageFailure(e)
        }
    }

    private func storageFailure(_ e: StorageError) -> ChorusError {
        guard e.readOnly || e.diskFull else { return ChorusError(.storage, "\(e)") }
        noteReadOnly(e)
        return diskError(e)
    }

    /// Logs the switch to read-only once.
    func noteReadOnly(_ e: StorageError) {
        let first = storageLog.withLock { s -> Bool in
            if s.readOnly { return false }
            s.readOnly = true
            return true
        }
        if first {
            logger.critical("storage is read-only: writes are refused, reads and read-only tasks go on",
                            metadata: ["path": "\(options.dataDir)", "error": "\(e.message.prefix(300))",
                                       "resumes-when-free-mib": "\(options.minFreeBytes >> 20)"])
        }
    }

    /// Every second: warns when free space falls below the reserve, and reopens a read-only store once free space
    /// is above the reserve again (the reopen replays the WAL and clears RocksDB's error state).
    func storageWatchLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            let health = storageHealth()
            let (wasLow, readOnly) = storageLog.withLock { ($0.low, $0.readOnly) }
            let low = health.state == .low
            if low != wasLow {
                storageLog.withLock { $0.low = low }
                if low {
                    logger.warning("free disk space below the reserve: this worker takes no new partition copies",
                                   metadata: ["path": "\(options.dataDir)", "free-mib": "\(health.freeBytes >> 20)",
                                              "reserve-mib": "\(options.minFreeBytes >> 20)"])
                } else if health.state == .ok {
                    logger.notice("free disk space back above the reserve",
                                  metadata: ["free-mib": "\(health.freeBytes >> 20)"])
                }
            }
            if health.state == .readOnly, !readOnly, let f = store.readOnlyReason { noteReadOnly(f) }
            guard health.state == .readOnly, health.totalBytes > 0, health.freeBytes >= options.minFreeBytes else {
                continue
            }
            let store = self.store
            do {
                // On the write queue: no write of this worker runs while the handle is replaced.
                try await writeQueue.run { try store.reopen() }
                storageLog.withLock { $0.readOnly = false }
                logger.notice("disk space freed: store reopened, writes resumed",
                              metadata: ["path": "\(options.dataDir)", "free-mib": "\(health.freeBytes >> 20)"])
            } catch {
                logger.error("reopening the store failed; retrying in a second",
                             metadata: ["error": "\(String("\(error)".prefix(300)))"])
            }
        }
    }
}

/// What the worker last logged about its disk (so each change is logged once).
struct StorageLogState {
    var low = false
    var readOnly = false
}
