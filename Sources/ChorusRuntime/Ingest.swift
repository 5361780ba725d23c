import ChorusData
import ChorusModel
import ChorusTransport
import ChorusWire
import Foundation
import Synchronization
import SwiftProtobuf

public struct IngestOptions: Sendable {
    public var paths: [String]
    /// Overrides the kind inferred from each file name.
    public var kind: RecordKind?
    public var mapping: MappingConfig?
    /// Mapping profile to apply to every file (otherwise chosen by each profile's `match` globs).
    public var profile: String?
    public var rejectsPath: String
    public var batchSize = 4000
    public var maxInFlight = 8
    /// How long one batch keeps being retried through failovers and moves before the ingest gives up.
    public var retryWindow: Duration = .seconds(60)

    public init(paths: [String], kind: RecordKind? = nil, mapping: MappingConfig? = nil, profile: String? = nil,
                rejectsPath: String) {
        self.paths = paths; self.kind = kind; self.mapping = mapping; self.profile = profile
        self.rejectsPath = rejectsPath
    }
}

/// Per-file figures of an ingest.
public struct IngestFileReport: Codable, Sendable {
    public var path: String
    public var kind: String
    public var format: String
    public var read: Int
    public var rejected: Int
}

/// The final count. It always reconciles: read = stored + duplicates + rejected.
public struct IngestReport: Codable, Sendable {
    public var read: Int
    public var stored: Int
    public var duplicates: Int
    public var rejected: Int
    public var files: [IngestFileReport]
    public var rejectsFile: String?
    public var seconds: Double
    public var recordsPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case read, stored, duplicates, rejected, files, rejectsFile = "rejects_file", seconds
        case recordsPerSecond = "records_per_second"
    }
}

/// Live figures for the progress line.
public struct IngestProgress: Sendable {
    public var read: Int
    public var acknowledged: Int
    public var rejected: Int
    public var bytesRead: Int
    public var bytesTotal: Int
    public var seconds: Double
}

/// Reads, validates and routes input files; sends batched writes straight to partition owners.
///
/// Parsing runs on a dedicated thread; batches flow to async senders through a stream with a bounded number in
/// flight (a semaphore gives back-pressure). Each record's counted copy is reported back as stored or duplicate.
public final class Ingestor: Sendable {
    let client: ChorusClient
    let options: IngestOptions

    final class Shared: Sendable {
        struct Counts { var read = 0, rejected = 0, acknowledged = 0, stored = 0, duplicates = 0, bytes = 0 }
        let counts = Mutex(Counts())
        let inFlight: DispatchSemaphore
        let failure = Mutex<(any Error)?>(nil)
        init(maxInFlight: Int) { inFlight = DispatchSemaphore(value: maxInFlight) }
    }

    struct Outbound: Sendable {
        var node: String
        var puts: [Chorus_V1_Put]
        var counted: Int
    }

    public init(client: ChorusClient, options: IngestOptions) {
        self.client = client
        self.options = options
    }

    /// Describes how each file will be read; throws a usage error before anything is ingested.
    func plan() throws -> [(path: String, kind: RecordKind, format: InputFormat, mapping: FieldMapping?)] {
        if options.paths.isEmpty { throw ChorusError(.usage, "no input files given") }
        var named: FieldMapping?
        if let p = options.profile {
            guard let m = options.mapping?.profile(named: p) else {
                throw ChorusError(.usage, "mapping profile '\(p)' not found", hint: "check --mapping and --profile")
            }
            named = m
        }
        return try options.paths.map { path in
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir), !isDir.boolValue else {
                throw ChorusError(.notFound, "input file not found: \(path)")
            }
            let base = (path as NSString).lastPathComponent
            let mapping = named ?? options.mapping?.profile(forFile: base)
            guard let kind = options.kind ?? mapping?.kind ?? RecordKind.infer(fromFileName: base) else {
                throw ChorusError(.usage, "cannot tell the record kind of \(path)",
                                  hint: "name it users*, content*, interactions* or follows*, or pass --kind")
            }
            let lower = base.lowercased()
            let format: InputFormat = lower.hasSuffix(".csv") ? .csv : .jsonl
            return (path, kind, format, mapping)
        }
    }

    public func run(progress: (@Sendable (IngestProgress) -> Void)? = nil) async throws -> IngestReport {
        let files = try plan()
        let start = ContinuousClock.now
        let map = try await client.partitionMapWithOwners()
        let shared = Shared(maxInFlight: options.maxInFlight)
        let totalBytes = files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        let (stream, cont) = AsyncStream.makeStream(of: Outbound.self)
        let reports = Locked<[IngestFileReport]>([])
        let rejects = try RejectsWriter(path: options.rejectsPath)
        let producerMap = map
        let options = self.options
        startDedicatedThread(name: "ingest-reader") {
            do {
                try Self.produce(files: files, map: producerMap, options: options, shared: shared, rejects: rejects,
                                 reports: reports, out: cont)
            } catch {
                shared.failure.withLock { $0 = $0 ?? error }
            }
            cont.finish()
        }
        let ticker = Task {
            guard let progress else { return }
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                let c = shared.counts.withLock { $0 }
                progress(IngestProgress(read: c.read, acknowledged: c.acknowledged, rejected: c.rejected,
                                        bytesRead: c.bytes, bytesTotal: totalBytes,
                                        seconds: (ContinuousClock.now - start).seconds))
            }
        }
        defer { ticker.cancel() }
        let mapBox = Locked(map)
        await withDiscardingTaskGroup { group in
            for await batch in stream {
                group.addTask {
                    defer { shared.inFlight.signal() }
                    do {
                        let reply = try await self.send(batch, map: mapBox)
                        shared.counts.withLock {
                            $0.stored += Int(reply.stored)
                            $0.duplicates += Int(reply.duplicates)
                            $0.acknowledged += Int(reply.stored + reply.duplicates)
                        }
                    } catch {
                        shared.failure.withLock { $0 = $0 ?? error }
                    }
                }
            }
        }
                try rejects.close()
        if let f = shared.failure.withLock({ $0 }) {
            let c = shared.counts.withLock { $0 }
            let e = (f as? ChorusError) ?? ChorusError(.internal, "\(f)")
            throw ChorusError(e.code, "ingest stopped: \(e.message). \(c.acknowledged) of \(c.read - c.rejected) valid "
                              + "records were acknowledged before the error",
                              hint: "fix the cause and run the same ingest again: it is idempotent and counts nothing twice")
        }
        let c = shared.counts.withLock { $0 }
        let secs = (ContinuousClock.now - start).seconds
        let report = IngestReport(read: c.read, stored: c.stored, duplicates: c.duplicates, rejected: c.rejected,
                                  files: reports.withLock { $0 }, rejectsFile: c.rejected > 0 ? options.rejectsPath : nil,
                                  seconds: secs, recordsPerSecond: secs > 0 ? Double(c.read) / secs : 0)
        if report.read != report.stored + report.duplicates + report.rejected {
            throw ChorusError(.internal, "ingest counts do not reconcile: read \(report.read) != stored \(report.stored) "
                              + "+ duplicates \(report.duplicates) + rejected \(report.rejected)")
        }
        return report
    }

    /// Sends one batch to the primaries of its partitions. When a primary refuses (the partition moved, a replica
    /// did not confirm, the worker is fenced) or cannot be reached, refreshes the map and re-routes the puts, with
    /// backoff, for up to `retryWindow` (long enough to ride out a worker's death and the failover that follows).
    func send(_ batch: Outbound, map: Locked<Chorus_V1_PartitionMap>) async throws -> Chorus_V1_WriteReply {
        let deadline = ContinuousClock.now + options.retryWindow
        var attempt = 0
        var groups = [batch.node: batch.puts]
        var total = Chorus_V1_WriteReply()
        var lastError: (any Error)?
        while !groups.isEmpty {
            attempt += 1
            let m = map.withLock { $0 }
            var retry: [Chorus_V1_Put] = []
            for (node, puts) in groups {
                guard let info = m.nodes.first(where: { $0.id == node }) else {
                    retry += puts
                    lastError = ChorusError(.unavailable, "partitions have no primary yet")
                    continue
                }
                if info.state == .dead {
                    // The coordinator promotes a replica as soon as it declares a worker dead, so a dead primary
                    // in the map means the partition's only copy is on that worker: waiting will not help.
                    throw ChorusError(.unavailable, "worker \(info.name) (\(info.id)) is dead and holds the only copy "
                                      + "of some partitions", hint: "start it again on its data dir, then re-run this ingest")
                }
                var wb = Chorus_V1_WriteBatch()
                wb.mapVersion = m.version
                wb.puts = puts
                do {
                    guard case let .writeBatch(r) = try await client.workerPeers.peer(info)
                        .call(.writeBatch(wb), timeout: .seconds(20)) else {
                        throw ChorusError(.internal, "unexpected reply to a write batch")
                    }
                    total.stored += r.stored
                    total.duplicates += r.duplicates
                    total.written += r.written
                } catch let e as ChorusError where [.wrongOwner, .fenced, .unavailable, .unreachable].contains(e.code) {
                    retry += puts
                    lastError = e
                }
            }
            groups = [:]
            if retry.isEmpty { break }
            if ContinuousClock.now > deadline {
                let why = lastError.map { "\($0)" } ?? "no reachable primary"
                throw ChorusError(.unavailable, "a write batch could not be delivered within \(Int(options.retryWindow.seconds)) s: \(why)",
                                  hint: "check `chorus cluster status`, then re-run this ingest (it is idempotent)")
            }
            try await Task.sleep(for: .milliseconds(min(100 * attempt, 1000)))
            if let fresh = try? await client.partitionMap() {
                map.withLock { if fresh.version >= $0.version { $0 = fresh } }
            }
            let now = map.withLock { $0 }
            for put in retry { groups[now.assignments[Int(put.partition)].owner, default: []].append(put) }
        }
        return total
    }

    static func produce(files: [(path: String, kind: RecordKind, format: InputFormat, mapping: FieldMapping?)],
                        map: Chorus_V1_PartitionMap, options: IngestOptions, shared: Shared, rejects: RejectsWriter,
                        reports: Locked<[IngestFileReport]>, out: AsyncStream<Outbound>.Continuation) throws {
        let placement = Placement(partitionCount: map.partitionCount)
        let owners = map.assignments.map(\.owner)
        var pending: [String: (puts: [Chorus_V1_Put], counted: Int)] = [:]
        var bytesBefore = 0
        func flush(_ node: String) {
            guard let p = pending[node], !p.puts.isEmpty else { return }
            shared.inFlight.wait()
            out.yield(Outbound(node: node, puts: p.puts, counted: p.counted))
            pending[node] = ([], 0)
        }
        for file in files {
            var parser = RecordParser(kind: file.kind, format: file.format, mapping: file.mapping)
            var fr = IngestFileReport(path: file.path, kind: file.kind.rawValue, format: file.format.rawValue,
                                      read: 0, rejected: 0)
            var lastBytes = 0
            try LineReader.forEachLine(path: file.path, maxLineBytes: RecordParser.maxLineBytes) { lineNo, line, bytes in
                if shared.failure.withLock({ $0 != nil }) { throw CancellationError() }
                let outcome: ParseOutcome
                var raw: UnsafeBufferPointer<UInt8>?
                switch line {
                case let .text(buf):
                    raw = buf
                    outcome = parser.parse(buf)
                case let .tooLong(n):
                    outcome = .reject("record too large (\(n) bytes, limit \(RecordParser.maxLineBytes))")
                }
                if bytes != lastBytes {
                    lastBytes = bytes
                    let b = bytesBefore + bytes
                    shared.counts.withLock { $0.bytes = b }
                }
                switch outcome {
                case .skip: return
                case let .reject(reason):
                    fr.read += 1
                    fr.rejected += 1
                    shared.counts.withLock { $0.read += 1; $0.rejected += 1 }
                    try rejects.write(file: file.path, line: lineNo, reason: reason, raw: raw)
                case let .record(rec):
                    fr.read += 1
                    shared.counts.withLock { $0.read += 1 }
                    for put in try Wire.puts(for: rec, placement: placement) {
                        let node = owners[Int(put.partition)]
                        pending[node, default: ([], 0)].puts.append(put)
                        if put.counted { pending[node]!.counted += 1 }
                        if pending[node]!.puts.count >= options.batchSize { flush(node) }
                    }
                }
            }
            bytesBefore += lastBytes
            reports.withLock { $0.append(fr) }
        }
        for node in Array(pending.keys) { flush(node) }
    }
}

/// Appends rejected records to a JSONL file: {"file", "line", "reason", "record"}. Created only when needed.
final class RejectsWriter: @unchecked Sendable {
    // SAFETY: used only by the single ingest reader thread, then closed by the caller after that thread finished.
    let path: String
    private var handle: FileHandle?
    private var buffer: [UInt8] = []

    init(path: String) throws { self.path = path }

    func write(file: String, line: Int, reason: String, raw: UnsafeBufferPointer<UInt8>?) throws {
        if handle == nil {
            guard FileManager.default.createFile(atPath: path, contents: nil),
                  let h = FileHandle(forWritingAtPath: path) else {
                throw ChorusError(.storage, "cannot write the rejects file \(path)", hint: "pass a writable --rejects path")
            }
            handle = h
        }
        var text = "{\"file\":" + JSONText.quote(file) + ",\"line\":\(line),\"reason\":" + JSONText.quote(reason)
        if let raw {
            let shown = String(decoding: raw.prefix(2000), as: UTF8.self)
            text += ",\"record\":" + JSONText.quote(shown)
        }
        text += "}\n"
        buffer.append(contentsOf: text.utf8)
        if buffer.count > 1 << 16 { try flush() }
    }

    private func flush() throws {
        guard let handle, !buffer.isEmpty else { return }
        try handle.write(contentsOf: buffer)
        buffer.removeAll(keepingCapacity: true)
    }

    func close() throws {
        try flush()
        try handle?.close()
    }
}

extension Duration {
    /// The duration in seconds, as a Double.
    public var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// A value behind a mutex, shareable by reference (Mutex itself is non-copyable).
final class Locked<T: Sendable>: Sendable {
    private let m: Mutex<T>
    init(_ v: T) { m = Mutex(v) }
    func withLock<R>(_ body: (inout T) throws -> R) rethrows -> R { try m.withLock { try body(&$0) } }
}
