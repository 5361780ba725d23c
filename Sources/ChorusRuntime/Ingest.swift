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
    /// Pseudonymous user ids: the cluster's secret, which the cluster's map names by its fingerprint. Every user
    /// id is replaced by its pseudonym here, before a record is sent (docs/security.md).
    public var pseudonymizer: Pseudonymizer?
    public var batchSize = 4000
    public var maxInFlight = 8
    /// How long one batch keeps being retried through failovers and moves before the ingest gives up.
    public var retryWindow: Duration = .seconds(60)
    /// Above this many rejects the run fails (exit 65) after storing the valid records.
    public var maxRejects: RejectLimit = .defaultLimit
    /// What the campaign plans allow outcome and campaign spend records to name; a record it finds a problem with is
    /// rejected with that reason. nil: with `checkCampaigns`, the run reads it from the coordinator
    /// (`ChorusClient.campaignCatalog()`) once it knows a file holds spend or outcomes.
    public var campaigns: CampaignCatalog?
    /// Whether outcome and campaign spend records are checked against the stored plans (docs/data-format.md).
    public var checkCampaigns = true

    public init(paths: [String], kind: RecordKind? = nil, mapping: MappingConfig? = nil, profile: String? = nil,
                rejectsPath: String) {
        self.paths = paths; self.kind = kind; self.mapping = mapping; self.profile = profile
        self.rejectsPath = rejectsPath
    }
}

/// How many rejected records a run tolerates: a count (`100`) or a share of the records read (`10%`).
public enum RejectLimit: Sendable, Equatable, CustomStringConvertible {
    case count(Int)
    case percent(Double)

    /// The documented default: a run fails when more than 10% of its records are rejected.
    public static let defaultLimit = RejectLimit.percent(10)

    /// Parses `N` or `P%` (0 ≤ P ≤ 100).
    public init?(_ text: String) {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("%") {
            guard let p = Double(t.dropLast()), p.isFinite, p >= 0, p <= 100 else { return nil }
            self = .percent(p)
        } else {
            guard let n = Int(t), n >= 0 else { return nil }
            self = .count(n)
        }
    }

    public var description: String {
        switch self {
        case let .count(n): return "\(n)"
        case let .percent(p): return p == p.rounded() && abs(p) < 1e6 ? "\(Int(p))%" : "\(p)%"
        }
    }

    /// Whether `rejected` of `read` records is beyond the limit.
    public func exceeded(rejected: Int, read: Int) -> Bool {
        switch self {
        case let .count(n): return rejected > n
        case let .percent(p): return read > 0 && Double(rejected) * 100 > p * Double(read)
        }
    }
}

/// Per-file figures of an ingest.
public struct IngestFileReport: Codable, Sendable {
    public var path: String
    public var kind: String
    public var format: String
    public var read: Int
    public var rejected: Int
    /// Earlier versions of a record that a later line of the same run replaces (counted in `duplicates`).
    public var superseded = 0
}

/// The final count. It always reconciles: read = stored + duplicates + rejected.
public struct IngestReport: Codable, Sendable {
    public var read: Int
    public var stored: Int
    /// Records already stored with the same contents, plus `superseded` ones.
    public var duplicates: Int
    /// Records whose id (user, content, interaction, follow pair) comes again later in the same run with other
    /// contents: the last version in the run is the one stored, the earlier ones count here and in `duplicates`.
    public var superseded: Int
    public var rejected: Int
    public var files: [IngestFileReport]
    public var rejectsFile: String?
    /// This run's id, also written on each of its lines in the rejects file.
    public var run: String
    /// Things to look at that did not stop the run: empty files, files of a directory that were not read.
    public var warnings: [String]
    public var seconds: Double
    /// Of `seconds`, the first read of the input that finds superseded versions.
    public var scanSeconds: Double
    public var recordsPerSecond: Double

    enum CodingKeys: String, CodingKey {
        case read, stored, duplicates, superseded, rejected, files, rejectsFile = "rejects_file", run, warnings
        case seconds, scanSeconds = "scan_seconds", recordsPerSecond = "records_per_second"
    }

    /// The error for a run beyond its reject limit (exit 65), or nil.
    public func rejectLimitError(_ limit: RejectLimit) -> ChorusError? {
        guard limit.exceeded(rejected: rejected, read: read) else { return nil }
        let pct = read > 0 ? String(format: "%.1f", Double(rejected) * 100 / Double(read)) : "0"
        let valid = stored + duplicates
        return ChorusError(.invalidInput, "\(rejected) of \(read) records were rejected (\(pct)%), more than "
                           + "--max-rejects \(limit); "
                           + (valid == 0 ? "no record was valid" : "the \(valid) valid records were stored"),
                           hint: "see the reasons in \(rejectsFile ?? "the rejects file"); fix the input or the "
                           + "--mapping and run the same ingest again (it is idempotent), or raise --max-rejects")
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
    /// What the run is doing: reading the files once to find records that a later line replaces, or loading.
    public var phase: Phase = .loading

    public enum Phase: String, Sendable { case scanning, loading }
}

/// Reads, validates and routes input files; sends batched writes straight to partition owners.
///
/// Parsing runs on a dedicated thread; batches flow to async senders through a stream with a bounded number in
/// flight (a semaphore gives back-pressure). Each record's counted copy is reported back as stored or duplicate.
public final class Ingestor: Sendable {
    let client: ChorusClient
    let options: IngestOptions

    final class Shared: Sendable {
        struct Counts {
            var read = 0, rejected = 0, acknowledged = 0, stored = 0, duplicates = 0, superseded = 0, bytes = 0
            var scanning = false
            var scanSeconds = 0.0
        }
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

    typealias PlannedFile = (path: String, kind: RecordKind, format: InputFormat, mapping: FieldMapping?)

    /// Describes how each file will be read; throws a usage error before anything is ingested. A directory
    /// stands for its regular files (not recursive, hidden files left out, by name); a file in it whose record
    /// kind cannot be told is left out with a warning.
    func plan(warnings: inout [String]) throws -> [PlannedFile] {
        if options.paths.isEmpty { throw ChorusError(.usage, "no input files given") }
        var named: FieldMapping?
        if let p = options.profile {
            guard let m = options.mapping?.profile(named: p) else {
                throw ChorusError(.usage, "mapping profile '\(p)' not found", hint: "check --mapping and --profile")
            }
            named = m
        }
        let fm = FileManager.default
        func kindOf(_ path: String) -> (RecordKind, FieldMapping?)? {
            let base = (path as NSString).lastPathComponent
            let mapping = named ?? options.mapping?.profile(forFile: base)
            guard let kind = options.kind ?? mapping?.kind ?? RecordKind.infer(fromFileName: base) else { return nil }
            return (kind, mapping)
        }
        func planned(_ path: String, _ kind: RecordKind, _ mapping: FieldMapping?) -> PlannedFile {
            let format: InputFormat = path.lowercased().hasSuffix(".csv") ? .csv : .jsonl
            return (path, kind, format, mapping)
        }
        var out: [PlannedFile] = []
        for path in options.paths {
            var isDir: ObjCBool = false
            guard fm.fileExists(atPath: path, isDirectory: &isDir) else {
                throw ChorusError(.notFound, "input file not found: \(path)")
            }
            guard isDir.boolValue else {
                guard let (kind, mapping) = kindOf(path) else {
                    throw ChorusError(.usage, "cannot tell the record kind of \(path)",
                                      hint: "name it users*, content*, interactions*, follows*, spend* or outcomes*, or pass --kind")
                }
                out.append(planned(path, kind, mapping))
                continue
            }
            let names: [String]
            do { names = try fm.contentsOfDirectory(atPath: path).sorted() } catch {
                throw ChorusError(.storage, "cannot list the directory \(path): \(error.localizedDescription)")
            }
            var taken = 0
            for name in names where !name.hasPrefix(".") {
                let full = (path as NSString).appendingPathComponent(name)
                var sub: ObjCBool = false
                guard fm.fileExists(atPath: full, isDirectory: &sub), !sub.boolValue else { continue }
                guard let (kind, mapping) = kindOf(full) else {
                    warnings.append("\(full): not read (its name does not say users*, content*, interactions*, "
                                    + "follows*, spend* or outcomes*; name it so, or ingest it alone with --kind)")
                    continue
                }
                out.append(planned(full, kind, mapping))
                taken += 1
            }
            if taken == 0 {
                throw ChorusError(.usage, "the directory \(path) has no input files",
                                  hint: "it should hold files named users*, content*, interactions*, follows*, spend* or outcomes* "
                                  + "(.jsonl or .csv); or pass the files themselves")
            }
        }
        return out
    }

    public func run(progress: (@Sendable (IngestProgress) -> Void)? = nil) async throws -> IngestReport {
        var warnings: [String] = []
        let files = try plan(warnings: &warnings)
        let start = ContinuousClock.now
        let runId = RejectsWriter.newRunId()
        let map = try await client.partitionMapWithOwners()
        try Self.checkPseudonyms(map, options.pseudonymizer)
        let shared = Shared(maxInFlight: options.maxInFlight)
        let totalBytes = files.reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1.path)[.size] as? Int) ?? 0) }
        let (stream, cont) = AsyncStream.makeStream(of: Outbound.self)
        let reports = Locked<[IngestFileReport]>([])
        let rejects = RejectsWriter(path: options.rejectsPath, run: runId, paths: files.map(\.path))
        let producerMap = map
        var checked = self.options
        // Read only when a file may name a campaign, after the files are known to exist.
        if checked.checkCampaigns, checked.campaigns == nil, files.contains(where: { $0.kind == .spend || $0.kind == .outcomes }) {
            checked.campaigns = try await client.campaignCatalog()
        }
        let options = checked
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
                                        seconds: (ContinuousClock.now - start).seconds,
                                        phase: c.scanning ? .scanning : .loading))
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
                              hint: e.code == .storage && e.hint != nil ? e.hint!
                                : "fix the cause and run the same ingest again: it is idempotent and counts nothing twice")
        }
        let c = shared.counts.withLock { $0 }
        let secs = (ContinuousClock.now - start).seconds
        let fileReports = reports.withLock { $0 }
        for f in fileReports where f.read == 0 {
            warnings.append("\(f.path): no records (the file is empty, or holds only blank lines or a CSV header)")
        }
        let report = IngestReport(read: c.read, stored: c.stored, duplicates: c.duplicates + c.superseded,
                                  superseded: c.superseded, rejected: c.rejected,
                                  files: fileReports, rejectsFile: c.rejected > 0 ? options.rejectsPath : nil,
                                  run: runId, warnings: warnings,
                                  seconds: secs, scanSeconds: c.scanSeconds, recordsPerSecond: secs > 0 ? Double(c.read) / secs : 0)
        if report.read != report.stored + report.duplicates + report.rejected {
            throw ChorusError(.internal, "ingest counts do not reconcile: read \(report.read) != stored \(report.stored) "
                              + "+ duplicates \(report.duplicates) + rejected \(report.rejected)")
        }
        return report
    }

    /// Sends one batch to the primaries of its partitions. When a primary refuses (the partition moved, a replica
    /// did not confirm, the worker is fenced) or cannot be reached, refreshes the map and re-routes the puts, with
    /// backoff, for up to `retryWindow` (long enough to ride out a worker's death and the failover that follows).
    /// Each record is counted (stored or duplicate) from the first reply that wrote it: a primary that wrote a
    /// batch whose copies did not confirm says so in `copies_unconfirmed`, and the resend that follows counts
    /// nothing, so a record this run stored is never reported as a duplicate of itself.
    func send(_ batch: Outbound, map: Locked<Chorus_V1_PartitionMap>) async throws -> Chorus_V1_WriteReply {
        let deadline = ContinuousClock.now + options.retryWindow
        var attempt = 0
        // Per node: the puts, and whether they were counted already (then only their copies are still owed).
        var groups: [(node: String, puts: [Chorus_V1_Put], counted: Bool)] = [(batch.node, batch.puts, false)]
        var total = Chorus_V1_WriteReply()
        var lastError: (any Error)?
        while !groups.isEmpty {
            attempt += 1
            let m = map.withLock { $0 }
            var retry: [(put: Chorus_V1_Put, counted: Bool)] = []
            for group in groups {
                let node = group.node
                let pending = group.puts.map { ($0, group.counted) }
                guard let info = m.nodes.first(where: { $0.id == node }) else {
                    retry += pending
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
                wb.puts = group.puts
                wb.acceptUnconfirmed = true
                wb.resend = group.counted
                do {
                    guard case let .writeBatch(r) = try await client.workerPeers.peer(info)
                        .call(.writeBatch(wb), timeout: .seconds(20)) else {
                        throw ChorusError(.internal, "unexpected reply to a write batch")
                    }
                    if !group.counted {
                        total.stored += r.stored
                        total.duplicates += r.duplicates
                    }
                    total.written += r.written
                    if !r.copiesUnconfirmed.isEmpty {
                        retry += group.puts.map { ($0, true) }
                        lastError = ChorusError(.unavailable, "written on \(info.name), but " + r.copiesUnconfirmed)
                    }
                } catch let e as ChorusError where [.wrongOwner, .fenced, .unavailable, .unreachable].contains(e.code) {
                    retry += pending
                    lastError = e
                }
            }
            groups = []
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
            // Counted and uncounted puts for one owner travel in separate batches.
            var next: [String: Int] = [:]
            for (put, counted) in retry {
                let owner = now.assignments[Int(put.partition)].owner
                let key = (counted ? "c/" : "n/") + owner
                if let i = next[key] { groups[i].puts.append(put) } else {
                    next[key] = groups.count
                    groups.append((owner, [put], counted))
                }
            }
        }
        return total
    }

    /// The identity of a record in the store: the key of its counted copy (see `Wire.puts`). Two records with the
    /// same identity in one run are two versions of one record.
    static func identity(_ r: Record) -> String {
        switch r {
        case let .user(u): return "u\u{0}" + u.id
        case let .content(c): return "c\u{0}" + c.id
        case let .interaction(i): return "i\u{0}" + i.userId + "\u{0}" + i.id
        case let .follow(f): return "f\u{0}" + f.followerId + "\u{0}" + f.followeeId
        case let .spend(s): return "s\u{0}" + s.identityKey
        case let .outcome(o): return "o\u{0}" + o.identityKey
        }
    }

    /// A record's position in the run: file index and line number.
    static func position(file: Int, line: Int) -> Int { file << 40 | line }

    /// Parses every file once without sending anything, to find the records that a later line of the same run
    /// replaces ("last one wins"). Memory: 8 bytes per record for the identity hashes, then one entry per
    /// repeated identity. The hashes only select candidates; the identities themselves are compared, so a hash
    /// collision can never drop a record. Large files are read in line-aligned byte ranges on one thread per
    /// core (the workers are idle until loading starts).
    static func lastVersions(of files: [PlannedFile], shared: Shared, pseudonymizer: Pseudonymizer? = nil) throws -> [String: Int] {
        struct Range: Sendable { var file: Int; var from: Int; var to: Int? ; var header: [UInt8]? }
        let cores = max(1, ProcessInfo.processInfo.activeProcessorCount)
        var ranges: [Range] = []
        for (fi, file) in files.enumerated() {
            let size = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? Int) ?? 0
            let parts = min(cores, max(1, size / (8 << 20)))
            let starts = try LineReader.chunkStarts(path: file.path, parts: parts)
            let header = file.format == .csv && starts.count > 1 ? try LineReader.firstNonBlankLine(path: file.path) : nil
            for (k, st) in starts.enumerated() {
                ranges.append(Range(file: fi, from: st, to: k + 1 < starts.count ? starts[k + 1] : nil,
                                    header: k > 0 ? header : nil))
            }
        }
        let allRanges = ranges
        /// Runs `body` for every record of one range: identity, its hash, its line number within the range.
        @Sendable func scan(_ r: Range, _ body: (String, UInt64, Int) -> Void) throws -> Int {
            let file = files[r.file]
            var parser = RecordParser(kind: file.kind, format: file.format, mapping: file.mapping)
            parser.pseudonymizer = pseudonymizer
            if let h = r.header { _ = h.withUnsafeBufferPointer { parser.parse($0) } }
            var lines = 0
            try LineReader.forEachLine(path: file.path, maxLineBytes: RecordParser.maxLineBytes, from: r.from,
                                       to: r.to) { lineNo, line, _ in
                lines = lineNo
                if lineNo & 0xFFF == 0, shared.failure.withLock({ $0 != nil }) { throw CancellationError() }
                guard case let .text(buf) = line, case let .record(rec) = parser.parse(buf) else { return }
                let id = identity(rec)
                body(id, StableHash.mixed64(id), lineNo)
            }
            return lines
        }
        /// One thread per range at most `cores` at a time; results in range order.
        func parallel<T: Sendable>(_ work: @escaping @Sendable (Int) throws -> T) throws -> [T] {
            let results = Locked<[Int: Result<T, any Error>]>([:])
            let next = Locked(0)
            let done = DispatchSemaphore(value: 0)
            let threads = min(cores, allRanges.count)
            for t in 0..<threads {
                startDedicatedThread(name: "ingest-scan-\(t)") {
                    while true {
                        let i = next.withLock { v -> Int in defer { v += 1 }; return v }
                        guard i < allRanges.count else { break }
                        let r = Result { try work(i) }
                        results.withLock { $0[i] = r }
                    }
                    done.signal()
                }
            }
            for _ in 0..<threads { done.wait() }
            return try allRanges.indices.map { i in try results.withLock { $0[i]! }.get() }
        }
        let rs = ranges
        let firstPass = try parallel { i -> (hashes: [UInt64], lines: Int) in
            var h: [UInt64] = []
            let lines = try scan(rs[i]) { _, hash, _ in h.append(hash) }
            return (h, lines)
        }
        var hashes = firstPass.flatMap(\.hashes)
        hashes.sort()
        var repeated = Set<UInt64>()
        var i = 1
        while i < hashes.count {
            if hashes[i] == hashes[i - 1] { repeated.insert(hashes[i]) }
            i += 1
        }
        hashes = []
        guard !repeated.isEmpty else { return [:] }
        // Line numbers of a range count from 1 at its start: add the lines of the file's earlier ranges.
        var lineBase = [Int](repeating: 0, count: ranges.count)
        for k in ranges.indices where k > 0 && ranges[k].file == ranges[k - 1].file {
            lineBase[k] = lineBase[k - 1] + firstPass[k - 1].lines
        }
        let wanted = repeated
        let bases = lineBase
        let secondPass = try parallel { i -> [(String, Int)] in
            var out: [(String, Int)] = []
            _ = try scan(rs[i]) { id, hash, line in
                if wanted.contains(hash) { out.append((id, position(file: rs[i].file, line: bases[i] + line))) }
            }
            return out
        }
        var last: [String: Int] = [:]
        var seen: [String: Int] = [:]
        for part in secondPass {
            for (id, pos) in part {
                last[id] = pos
                seen[id, default: 0] += 1
            }
        }
        return last.filter { seen[$0.key, default: 0] > 1 }
    }

    static func produce(files: [PlannedFile], map: Chorus_V1_PartitionMap, options: IngestOptions, shared: Shared,
                        rejects: RejectsWriter, reports: Locked<[IngestFileReport]>,
                        out: AsyncStream<Outbound>.Continuation) throws {
        shared.counts.withLock { $0.scanning = true }
        let scanStart = ContinuousClock.now
        let lastVersion = try lastVersions(of: files, shared: shared, pseudonymizer: options.pseudonymizer)
        let scanSeconds = (ContinuousClock.now - scanStart).seconds
        shared.counts.withLock { $0.scanning = false; $0.scanSeconds = scanSeconds }
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
        for (fi, file) in files.enumerated() {
            var parser = RecordParser(kind: file.kind, format: file.format, mapping: file.mapping)
            parser.pseudonymizer = options.pseudonymizer
            var fr = IngestFileReport(path: file.path, kind: file.kind.rawValue, format: file.format.rawValue,
                                      read: 0, rejected: 0)
            var lastBytes = 0
            try LineReader.forEachLine(path: file.path, maxLineBytes: RecordParser.maxLineBytes) { lineNo, line, bytes in
                if shared.failure.withLock({ $0 != nil }) { throw CancellationError() }
                let outcome: ParseOutcome
                var raw: UnsafeBufferPointer<UInt8>?
                var shownPrefix: [UInt8] = []
                switch line {
                case let .text(buf):
                    raw = buf
                    outcome = parser.parse(buf)
                case let .tooLong(n, prefix):
                    shownPrefix = prefix
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
                    if raw != nil {
                        try rejects.write(file: file.path, line: lineNo, reason: reason, raw: raw)
                    } else {
                        try shownPrefix.withUnsafeBufferPointer {
                            try rejects.write(file: file.path, line: lineNo, reason: reason, raw: $0)
                        }
                    }
                case let .record(rec):
                    if let reason = options.campaigns?.problem(with: rec) {
                        fr.read += 1
                        fr.rejected += 1
                        shared.counts.withLock { $0.read += 1; $0.rejected += 1 }
                        try rejects.write(file: file.path, line: lineNo, reason: reason, raw: raw)
                        return
                    }
                    fr.read += 1
                    if !lastVersion.isEmpty, let last = lastVersion[identity(rec)],
                       last != position(file: fi, line: lineNo) {
                        fr.superseded += 1
                        shared.counts.withLock { $0.read += 1; $0.superseded += 1 }
                        return
                    }
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

/// Appends rejected records to a JSONL file, created only when a run has a reject. Each run that rejects something
/// first appends a header line `{"run", "started", "files"}`; each reject line is
/// `{"run", "file", "line", "reason", "record"}` (`record`: the first 2000 bytes of the line as read).
/// Earlier runs' lines stay: tell them apart by `run`.
final class RejectsWriter: @unchecked Sendable {
    // SAFETY: used only by the single ingest reader thread, then closed by the caller after that thread finished.
    let path: String
    let run: String
    let paths: [String]
    private var handle: FileHandle?
    private var buffer: [UInt8] = []

    init(path: String, run: String, paths: [String]) {
        self.path = path; self.run = run; self.paths = paths
    }

    /// A run id: the start time (UTC, to the millisecond) and the process id.
    static func newRunId() -> String {
        let ms = Int64(Date().timeIntervalSince1970 * 1000)
        let frac = ms % 1000
        return Timestamp.iso(ms / 1000).dropLast() + "." + String(1000 + frac).dropFirst() + "Z-\(getpid())"
    }

    func write(file: String, line: Int, reason: String, raw: UnsafeBufferPointer<UInt8>?) throws {
        if handle == nil {
            let fm = FileManager.default
            if !fm.fileExists(atPath: path) { _ = fm.createFile(atPath: path, contents: nil) }
            guard let h = FileHandle(forWritingAtPath: path) else {
                throw ChorusError(.storage, "cannot write the rejects file \(path)", hint: "pass a writable --rejects path")
            }
            _ = try? h.seekToEnd()
            handle = h
            let header = "{\"run\":" + JSONText.quote(run) + ",\"started\":" + JSONText.quote(run.prefix(24).description)
                + ",\"files\":[" + paths.map(JSONText.quote).joined(separator: ",") + "]}\n"
            buffer.append(contentsOf: header.utf8)
        }
        var text = "{\"run\":" + JSONText.quote(run) + ",\"file\":" + JSONText.quote(file) + ",\"line\":\(line),\"reason\":"
            + JSONText.quote(reason)
        if let raw {
            let shown = String(decoding: raw.prefix(2000), as: UTF8.self)
            text += ",\"record\":" + JSONText.quote(shown)
        }
        text += "}\n"
        buffer.append(contentsOf: text.utf8)
        if buffer.count > 1 << 16 { try flush() }
    }

    /// Writes the buffered lines and syncs them to disk (before a follow checkpoint moves past them).
    func sync() throws {
        try flush()
        try handle?.synchronize()
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

extension Ingestor {
    /// An ingest into a cluster of pseudonymous ids must hold the cluster's secret, and only then may it hold one:
    /// plaintext and pseudonymous ids of the same user would never meet.
    static func checkPseudonyms(_ map: Chorus_V1_PartitionMap, _ p: Pseudonymizer?) throws {
        switch (map.pseudonymFingerprint.isEmpty, p) {
        case (true, nil):
            return
        case (false, nil):
            throw ChorusError(.usage, "this cluster stores pseudonymous user ids (secret fingerprint \(map.pseudonymFingerprint))",
                              hint: "pass --pseudonym-secret FILE or set CHORUS_PSEUDONYM_SECRET (docs/security.md)")
        case let (true, p?):
            throw ChorusError(.usage, "this cluster stores user ids as they are, but a pseudonym secret (fingerprint \(p.fingerprint)) was given",
                              hint: "drop --pseudonym-secret, or create the cluster with `chorus coordinator --pseudonymous-ids FINGERPRINT`")
        case let (false, p?):
            guard p.fingerprint == map.pseudonymFingerprint else {
                throw ChorusError(.usage, "the pseudonym secret's fingerprint \(p.fingerprint) is not the cluster's (\(map.pseudonymFingerprint))",
                                  hint: "use the cluster's secret file")
            }
        }
    }
}
