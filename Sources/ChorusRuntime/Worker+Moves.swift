import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation

/// Replicated writes a learner received while its copy ran. The copy's SST files are ingested with sequence numbers
/// newer than anything in the store, so a key written during the copy would go back to the value the file holds;
/// applying these again, in order, right after the ingest puts back every write made since the learner joined.
struct CatchUpLog: Sendable {
    /// Above this many bytes of keys and values the log stops recording and the copy fails (the coordinator
    /// retries the move later): memory stays bounded under a write storm into the partition being moved.
    static let maxBytes = 256 << 20
    var ops: [Chorus_V1_ReplicaOp] = []
    var bytes = 0
    var overflowed = false

    mutating func record(_ op: Chorus_V1_ReplicaOp) {
        guard !overflowed else { return }
        bytes += op.key.count + op.value.count + op.rangeEnd.count
        if bytes > Self.maxBytes {
            overflowed = true
            ops = []
            return
        }
        ops.append(op)
    }
}

/// An SST file this worker wrote for a move target, until it is fetched.
struct OutgoingFile: Sendable {
    var path: String
    var size: UInt64
    var touched: ContinuousClock.Instant
}

/// Partition moves by SST files.
///
/// The learner asks the partition's primary for the partition's keys one file at a time (`partition_file`: the
/// primary writes the keys after the previous file's last key into an SST file of up to `fileRows` bytes of rows),
/// fetches each file in chunks (`file_chunk`, throttled), and checks it: block checksums, entry count, key range
/// inside the partition and after the previous file. Once the last file is in, it links all files into its store
/// in one atomic ingest and applies the replicated writes it received since it became a learner again (its
/// `CatchUpLog`), both on the write queue so no replicated write slips between them. A copy that fails or is
/// abandoned deletes its files; the learner's partial data goes with the map change that drops it.
extension Worker {
    static let transferDirName = "transfer"
    /// Rows (keys and values, uncompressed) per SST file of a move.
    static let fileRows = 64 << 20
    /// Bytes per `file_chunk` when the move is not throttled.
    static let chunkBytes = 4 << 20
    /// A written file nobody read for this long is deleted (its learner gave up).
    static let staleFileAfter: Duration = .seconds(120)
    /// Files written and not yet fetched, at most (moves run at most a few at a time per worker).
    static let maxOutgoingFiles = 32

    var transferDir: String { options.dataDir + "/" + Self.transferDirName }

    // MARK: the source (the partition's primary)

    /// A move reads from the partition's primary only, under a valid lease, with a map at least as new as the
    /// learner's.
    func checkMoveSource(_ partition: UInt32, mapVersion: UInt64) async throws {
        try checkLease("partition copies")
        if state.withLock({ $0.map.version }) < mapVersion { try await refreshMap() }
        let map = state.withLock { $0.map }
        guard partition < map.partitionCount, map.assignments[Int(partition)].owner == nodeId else {
            throw fence("worker \(name) is not the primary of partition \(partition) (map version \(map.version))")
        }
    }

    /// Writes the next SST file of a partition for a move target.
    func partitionFile(_ r: Chorus_V1_PartitionFileRequest) async throws -> Chorus_V1_PartitionFile {
        try await checkMoveSource(r.partition, mapVersion: r.mapVersion)
        deleteStaleOutgoing()
        // Each file waits on disk until fetched: bound them, so that requests alone cannot fill the disk.
        guard state.withLock({ $0.outgoing.count }) < Self.maxOutgoingFiles else {
            throw ChorusError(.unavailable, "worker \(name) already holds \(Self.maxOutgoingFiles) move files nobody has "
                              + "fetched yet", hint: "retry when they are fetched or expire (\(Self.staleFileAfter))")
        }
        let store = self.store
        let pre = ShardKeys.prefix(partition: r.partition)
        let end = Store.prefixEnd(pre)
        let from = r.after.isEmpty ? pre : [UInt8](r.after) + [0]
        let rows = Int(clamping: r.maxBytes == 0 ? UInt64(Self.fileRows) : min(r.maxBytes, UInt64(Self.fileRows) * 4))
        let id = UUID().uuidString
        let dir = transferDir + "/out"
        let path = dir + "/p\(r.partition)-\(id).sst"
        return try await computeQueue.run { [self] in
            var out = Chorus_V1_PartitionFile()
            if r.after.isEmpty, let end { out.bytesTotal = store.approximateSize(from: pre, to: end) }
            let written: ExportedSST?
            do {
                try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                written = try store.exportSST(to: path, from: from, to: end, maxBytes: rows)
            } catch {
                throw ChorusError(.storage, "worker \(name) cannot write partition \(r.partition) into a file: \(error)",
                                  hint: "see that worker's disk; the coordinator retries the move")
            }
            guard let f = written else {
                out.done = true
                return out
            }
            out.fileID = id
            out.size = f.fileBytes
            out.keys = f.keys
            out.firstKey = Data(f.firstKey)
            out.lastKey = Data(f.lastKey)
            out.done = !f.more
            state.withLock { $0.outgoing[id] = OutgoingFile(path: path, size: f.fileBytes, touched: .now) }
            return out
        }
    }

    /// Serves bytes of a file `partitionFile` wrote. The file is deleted once its last byte was read.
    func fileChunk(_ r: Chorus_V1_FileChunkRequest) async throws -> Chorus_V1_FileChunk {
        let file = state.withLock { s -> OutgoingFile? in
            s.outgoing[r.fileID]?.touched = .now
            return s.outgoing[r.fileID]
        }
        guard let file else {
            throw ChorusError(.notFound, "worker \(name) has no move file \(r.fileID): it was fetched already, or "
                              + "deleted after \(Self.staleFileAfter) unread",
                              hint: "the coordinator retries the move")
        }
        guard r.offset <= file.size else {
            throw ChorusError(.usage, "offset \(r.offset) is past the end of move file \(r.fileID) (\(file.size) bytes)")
        }
        let want = UInt64(r.maxBytes == 0 ? UInt32(Self.chunkBytes) : r.maxBytes)
        let n = Int(min(want, file.size - r.offset))
        let data: Data = try await computeQueue.run {
            guard let h = FileHandle(forReadingAtPath: file.path) else {
                throw ChorusError(.storage, "cannot open move file \(file.path)")
            }
            defer { try? h.close() }
            try h.seek(toOffset: r.offset)
            return try h.read(upToCount: n) ?? Data()
        }
        guard data.count == n else {
            throw ChorusError(.storage, "move file \(file.path) is shorter than the \(file.size) bytes written")
        }
        if r.offset + UInt64(n) >= file.size {
            state.withLock { _ = $0.outgoing.removeValue(forKey: r.fileID) }
            try? FileManager.default.removeItem(atPath: file.path)
        }
        var out = Chorus_V1_FileChunk()
        out.data = data
        return out
    }

    /// Deletes files no move target read for `staleFileAfter`.
    func deleteStaleOutgoing() {
        let now = ContinuousClock.now
        let stale = state.withLock { s -> [OutgoingFile] in
            let old = s.outgoing.filter { now - $0.value.touched > Self.staleFileAfter }
            for k in old.keys { s.outgoing[k] = nil }
            return Array(old.values)
        }
        for f in stale { try? FileManager.default.removeItem(atPath: f.path) }
    }

    // MARK: the learner

    /// Copies a partition from its primary into this worker (a learner of it), throttled, by SST files.
    func copyPartition(_ c: Chorus_V1_CopyPartition) async throws -> Chorus_V1_CopyReply {
        if state.withLock({ $0.map.version }) < c.mapVersion { try await refreshMap() }
        let p = c.partition
        @Sendable func stillLearner() -> Bool {
            let m = state.withLock { $0.map }
            return p < m.partitionCount && m.assignments[Int(p)].learners.contains(nodeId)
        }
        guard stillLearner() else {
            throw fence("worker \(name) is not a learner of partition \(p) (map version \(state.withLock { $0.map.version }))")
        }
        guard state.withLock({ $0.catchUp[p] != nil }) else {
            throw fence("partition \(p) was copied here already, or this worker became its learner before a restart; "
                        + "a copy starts only from a fresh learner")
        }
        let health = storageHealth()
        if health.state != .ok {
            throw ChorusError(.storage, "worker \(name) takes no partition copies: "
                              + (health.state == .low ? "\(health.freeBytes >> 20) MiB free on \(options.dataDir), below "
                                 + "its reserve of \(options.minFreeBytes >> 20) MiB" : health.reason),
                              hint: "free space on that disk; the coordinator places the copy elsewhere meanwhile")
        }
        var info = Chorus_V1_NodeInfo()
        info.id = c.sourceID
        info.name = c.sourceID
        info.address = c.sourceAddress
        // The source's server key: from the request, else from the map this worker holds.
        info.publicKey = c.sourcePublicKey.isEmpty
            ? state.withLock { $0.map.nodes.first { $0.id == c.sourceID }?.publicKey ?? "" } : c.sourcePublicKey
        let source = try workerPeers.peer(info)
        var progress = Chorus_V1_MoveProgress()
        progress.partition = p
        state.withLock { $0.copies[p] = progress }
        defer { _ = state.withLock { $0.copies.removeValue(forKey: p) } }
        let dir = transferDir + "/in/p\(p)-\(UUID().uuidString)"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw ChorusError(.storage, "cannot create \(dir): \(error.localizedDescription)")
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Throttled moves fetch small chunks, so the rate holds and progress moves within a second.
        let chunk = c.rateBytesPerS > 0
            ? UInt32(clamping: min(max(c.rateBytesPerS / 4, 64 << 10), UInt64(Self.chunkBytes)))
            : UInt32(Self.chunkBytes)
        let start = ContinuousClock.now
        var reply = Chorus_V1_CopyReply()
        var files: [String] = []
        var previousLast: [UInt8]?
        @Sendable func checkGoing() throws {
            try checkLease("partition copies")
            guard stillLearner() else { throw fence("partition \(p) copy abandoned: no longer a learner of it") }
            if state.withLock({ $0.catchUp[p]?.overflowed == true }) {
                throw ChorusError(.unavailable, "partition \(p) received more than \(CatchUpLog.maxBytes >> 20) MiB of "
                                  + "writes during its copy; the coordinator retries the move")
            }
        }
        // The source writes file n+1 while this worker fetches and checks file n.
        func requestFile(after: Data) -> Task<Chorus_V1_PartitionFile, any Error> {
            var req = Chorus_V1_PartitionFileRequest()
            req.partition = p
            req.after = after
            req.maxBytes = UInt64(Self.fileRows)
            req.mapVersion = c.mapVersion
            return Task {
                guard case let .partitionFile(file) = try await source.call(.partitionFile(req), timeout: .seconds(120))
                else { throw ChorusError(.internal, "unexpected reply to partition_file") }
                return file
            }
        }
        var pending = requestFile(after: Data())
        defer { pending.cancel() }
        var first = true
        while true {
            try checkGoing()
            let file = try await pending.value
            if first {
                // A partition that fits in one file has that file's size; a bigger one RocksDB's estimate of its
                // SST files (memtables not included, so never below the first file).
                let total = file.done ? file.size : max(file.bytesTotal, file.size)
                state.withLock { $0.copies[p]?.bytesTotal = total }
                first = false
            }
            if !file.done {
                guard !file.lastKey.isEmpty else { throw ChorusError(.internal, "partition_file: more keys but no last key") }
                pending = requestFile(after: file.lastKey)
            }
            if !file.fileID.isEmpty {
                let path = dir + "/\(files.count).sst"
                let keysBefore = reply.keys
                var fetched: UInt64 = 0
                try await fetch(file, from: source, into: path, chunk: chunk) { got in
                    try checkGoing()
                    reply.bytes += UInt64(got)
                    fetched += UInt64(got)
                    let copied = reply.bytes
                    // Keys so far: those of the whole files, and the fetched share of this one's.
                    let keys = keysBefore + UInt64(Double(file.keys) * Double(fetched) / Double(max(file.size, 1)))
                    state.withLock { s in
                        s.copies[p]?.bytesCopied = copied
                        s.copies[p]?.keysCopied = keys
                    }
                    if c.rateBytesPerS > 0 {
                        let due = Double(copied) / Double(c.rateBytesPerS)
                        let elapsed = (ContinuousClock.now - start).seconds
                        // At most 10 s per chunk: a huge rate or size from a peer must not trap Int().
                        if due > elapsed { try await Task.sleep(for: .milliseconds(Int(min(due - elapsed, 10) * 1000))) }
                    }
                }
                let facts: SSTFacts
                do {
                    facts = try await computeQueue.run { try Store.inspectSST(path) }
                } catch {
                    throw ChorusError(.storage, "partition \(p): the file from \(c.sourceID) is damaged: \(error)",
                                      hint: "the coordinator retries the move")
                }
                let prefix = ShardKeys.prefix(partition: p)
                guard facts.entries == file.keys, facts.firstKey == [UInt8](file.firstKey),
                      facts.lastKey == [UInt8](file.lastKey),
                      facts.firstKey.starts(with: prefix), facts.lastKey.starts(with: prefix),
                      previousLast.map({ $0.lexicographicallyPrecedes(facts.firstKey) }) ?? true
                else {
                    throw ChorusError(.storage, "partition \(p): the file from \(c.sourceID) does not hold what it "
                                      + "announced (\(facts.entries) keys, not \(file.keys), or keys outside the "
                                      + "partition or out of order); nothing was ingested",
                                      hint: "the coordinator retries the move")
                }
                files.append(path)
                previousLast = facts.lastKey
                reply.keys += file.keys
                let keys = reply.keys
                state.withLock { $0.copies[p]?.keysCopied = keys }
            }
            if file.done { break }
        }
        // Ingest and catch up in one step of the write queue: no replicated write lands between the two.
        let store = self.store
        let ingested = files
        let replayed: Int = try await writeQueue.run { [self] in
            try checkGoing()
            guard let log = state.withLock({ $0.catchUp[p] }) else {
                throw fence("partition \(p) copy abandoned: its learner was reset")
            }
            try storageWrite { try store.ingest(files: ingested) }
            if !log.ops.isEmpty {
                var wb = WriteBatch()
                for op in log.ops {
                    if op.delete { wb.delete([UInt8](op.key)) }
                    else if op.rangeEnd.isEmpty { wb.put([UInt8](op.key), [UInt8](op.value)) }
                    else { wb.deleteRange(from: [UInt8](op.key), to: [UInt8](op.rangeEnd)) }
                }
                try storageWrite { try store.write(wb, sync: true) }
            }
            state.withLock { s in
                s.catchUp[p] = nil
                if !ingested.isEmpty { s.nonEmpty.insert(p) }
            }
            return log.ops.count
        }
        reply.files = UInt64(files.count)
        reply.replayedWrites = UInt64(replayed)
        return reply
    }

    /// Fetches one move file into `path`, chunk by chunk; `progress` runs after each chunk with its size.
    private func fetch(_ file: Chorus_V1_PartitionFile, from source: Peer, into path: String, chunk: UInt32,
                       progress: (Int) async throws -> Void) async throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else {
            throw ChorusError(.storage, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var offset: UInt64 = 0
        while offset < file.size {
            var req = Chorus_V1_FileChunkRequest()
            req.fileID = file.fileID
            req.offset = offset
            req.maxBytes = chunk
            guard case let .fileChunk(got) = try await source.call(.fileChunk(req), timeout: .seconds(30))
            else { throw ChorusError(.internal, "unexpected reply to file_chunk") }
            let data = got.data
            guard !data.isEmpty, offset + UInt64(data.count) <= file.size else {
                throw ChorusError(.storage, "move file \(file.fileID): \(data.count) bytes at offset \(offset) of \(file.size)")
            }
            // Blocking file I/O stays off the cooperative pool.
            let failure: String? = try await computeQueue.run {
                data.withUnsafeBytes { buf -> String? in
                    var done = 0
                    while done < buf.count {
                        let n = Glibc.write(fd, buf.baseAddress! + done, buf.count - done)
                        if n < 0 {
                            if errno == EINTR { continue }
                            return String(cString: strerror(errno))
                        }
                        done += n
                    }
                    return nil
                }
            }
            if let failure {
                throw ChorusError(.storage, "writing \(path): \(failure)",
                                  hint: "free space on this worker's disk; the coordinator retries the move")
            }
            offset += UInt64(data.count)
            try await progress(data.count)
        }
    }
}
