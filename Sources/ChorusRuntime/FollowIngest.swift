import ChorusData
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Glibc
import Synchronization

/// Settings of `chorus ingest --follow` (docs/operations.md, "Streaming ingest").
public struct FollowOptions: Sendable {
    /// Files, directories (their regular files) or glob patterns (`data/interactions-*.jsonl`), looked up again on
    /// every poll: new files that match are read from their start.
    public var paths: [String]
    public var kind: RecordKind?
    public var mapping: MappingConfig?
    public var profile: String?
    public var rejectsPath: String
    /// The checkpoint: per file, its identity and the offset of the last acknowledged record.
    public var statePath: String
    /// Pseudonymous user ids (the cluster's secret), as in `IngestOptions`.
    public var pseudonymizer: Pseudonymizer?
    /// The longest a read record waits before it is sent.
    public var batchDelay: Duration = .seconds(1)
    /// Records per write batch; a round sends at most `batchSize × maxInFlight` records.
    public var batchSize = 4000
    public var maxInFlight = 8
    /// How often the files are checked for growth, rotation, truncation and new matches.
    public var pollInterval: Duration = .milliseconds(200)
    /// How long one round keeps being retried through failovers before it is reported and retried again later.
    public var retryWindow: Duration = .seconds(60)
    /// Submit an incremental `features` job this often while new records arrive (nil: never).
    public var featuresEvery: Duration? = .seconds(60)
    /// Stop once every file is read to its end and nothing new came for this long (nil: run until a signal).
    public var idleExit: Duration?
    /// A file whose name now names another file (rotated), or that no longer matches, is read to its end and
    /// closed after this long without growth; its last line counts even without a newline.
    public var retireAfter: Duration = .seconds(5)

    public init(paths: [String], statePath: String, rejectsPath: String) {
        self.paths = paths; self.statePath = statePath; self.rejectsPath = rejectsPath
    }

    /// The default checkpoint path for a set of inputs: `$XDG_STATE_HOME/chorus/follow-HASH.json` (or
    /// `~/.local/state/...`), HASH of the absolute input paths, so each set of inputs has its own.
    public static func defaultStatePath(paths: [String], environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        let cwd = FileManager.default.currentDirectoryPath
        let abs = paths.map { $0.hasPrefix("/") ? $0 : cwd + "/" + $0 }.sorted().joined(separator: "\n")
        let hash = String(StableHash.fnv1a64(abs), radix: 16)
        let base = environment["XDG_STATE_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.local/state")
        return base + "/chorus/follow-" + hash + ".json"
    }
}

/// The figures of a follow run (since this process started).
public struct FollowReport: Codable, Sendable {
    public var read = 0
    public var stored = 0
    public var duplicates = 0
    public var rejected = 0
    /// Rounds sent and acknowledged (one checkpoint each).
    public var rounds = 0
    public var featureRuns = 0
    public var files: [FollowFileReport] = []
    public var rejectsFile: String?
    public var stateFile: String
    public var seconds = 0.0
    /// Rotations, truncations, new files, delivery problems, in order.
    public var events: [String] = []

    enum CodingKeys: String, CodingKey {
        case read, stored, duplicates, rejected, rounds, featureRuns = "feature_runs", files
        case rejectsFile = "rejects_file", stateFile = "state_file", seconds, events
    }
}

public struct FollowFileReport: Codable, Sendable {
    public var path: String
    public var kind: String
    public var read: Int
    public var rejected: Int
    /// Acknowledged bytes and lines.
    public var offset: Int
    public var line: Int
}

/// Live figures for the progress line.
public struct FollowProgress: Sendable {
    public var files: Int
    public var read: Int
    public var acknowledged: Int
    public var rejected: Int
    /// Read but not acknowledged yet.
    public var pending: Int
    /// Bytes in the followed files beyond what was read.
    public var behindBytes: Int
    public var seconds: Double
}

/// The checkpoint file. Written whole (temporary file, fsync, rename, fsync of the directory) after every
/// acknowledged round, so a kill at any point leaves the previous or the new version.
struct FollowState: Codable {
    var version = 1
    var files: [Entry] = []

    struct Entry: Codable, Equatable {
        var path: String
        var device: UInt64
        var inode: UInt64
        /// FNV-1a 64 of the first `fingerprintBytes` bytes (hex): tells a reused inode from the same file.
        var fingerprint: String
        var fingerprintBytes: Int
        /// The byte offset and line number after the last acknowledged record.
        var offset: Int
        var line: Int
        var kind: String
        var format: String
        /// Unix seconds of the last change.
        var updated: Int64
        /// FNV-1a 64 of the (up to) 64 bytes before `offset` (hex): a file truncated and written again past the
        /// offset, with the same first bytes (a long CSV header), is told from the one read.
        var tail: String?

        enum CodingKeys: String, CodingKey {
            case path, device, inode, fingerprint, fingerprintBytes = "fingerprint_bytes", offset, line, kind, format, updated
            case tail
        }
    }

    static let maxEntries = 1000

    static func load(_ path: String) throws -> FollowState {
        guard let data = FileManager.default.contents(atPath: path) else { return FollowState() }
        do { return try JSONDecoder().decode(FollowState.self, from: data) } catch {
            throw ChorusError(.invalidInput, "the follow checkpoint \(path) is not readable: \(error)",
                              hint: "move it away to start over (every record is then read again and counted as a duplicate)")
        }
    }

    func save(_ path: String) throws {
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        try DurableFile.replace(path, with: Array(try enc.encode(self)))
    }
}

/// What one poll read: the puts of its records and where each file stands after them.
struct FollowRound {
    var puts: [Chorus_V1_Put] = []
    var read = 0
    var rejected = 0
    /// Per tracked file (by its tracking number): the checkpoint entry after the lines read.
    var positions: [Int: FollowState.Entry] = [:]
    /// The reader stopped at the record limit: more is waiting.
    var more = false
    /// Files closed in this poll (read to their end after a rotation): their descriptor numbers are gone.
    var closed = 0

    var isEmpty: Bool { positions.isEmpty && puts.isEmpty }

    mutating func merge(_ o: FollowRound) {
        puts += o.puts; read += o.read; rejected += o.rejected
        positions.merge(o.positions) { $1 }
        more = o.more
    }
}

/// Finds and reads the followed files. Confined to one thread (a serial `BlockingQueue`): all its file I/O blocks.
final class FollowReader: @unchecked Sendable {
    // SAFETY: every method runs on `FollowIngestor.queue`, a serial queue with one thread.
    final class Tracked {
        let number: Int
        var path: String
        var fd: Int32
        let device: UInt64, inode: UInt64
        var fingerprint: UInt64 = 0
        var fingerprintBytes = 0
        var offset: Int
        var line: Int
        let kind: RecordKind
        let format: InputFormat
        let mapping: FieldMapping?
        var parser: RecordParser
        var retiredSince: ContinuousClock.Instant?
        /// The size last seen, and when it last grew.
        var lastSize = -1
        var lastGrowth = ContinuousClock.now
        var read = 0, rejected = 0

        init(number: Int, path: String, fd: Int32, device: UInt64, inode: UInt64, offset: Int, line: Int,
             kind: RecordKind, format: InputFormat, mapping: FieldMapping?) {
            self.number = number; self.path = path; self.fd = fd; self.device = device; self.inode = inode
            self.offset = offset; self.line = line; self.kind = kind; self.format = format; self.mapping = mapping
            parser = RecordParser(kind: kind, format: format, mapping: mapping)
        }
    }

    let options: FollowOptions
    let placement: Placement
    let rejects: RejectsWriter
    var state: FollowState
    var tracked: [Tracked] = []
    var nextNumber = 0
    var pollCount = 0
    var events: [String] = []
    var warnedMissing = Set<String>()
    let named: FieldMapping?
    static let fingerprintLength = 1024
    static let tailLength = 64
    static let readChunk = 4 << 20

    init(options: FollowOptions, partitionCount: UInt32, state: FollowState, runId: String) throws {
        self.options = options
        placement = Placement(partitionCount: partitionCount)
        self.state = state
        rejects = RejectsWriter(path: options.rejectsPath, run: runId, paths: options.paths)
        if let p = options.profile {
            guard let m = options.mapping?.profile(named: p) else {
                throw ChorusError(.usage, "mapping profile '\(p)' not found", hint: "check --mapping and --profile")
            }
            named = m
        } else { named = nil }
    }

    func note(_ text: String) { events.append(text) }

    // MARK: finding files

    static func isGlob(_ p: String) -> Bool { p.contains("*") || p.contains("?") || p.contains("[") }

    /// The regular files the inputs name now, in a stable order.
    func currentPaths() -> [String] {
        var out: [String] = []
        var seen = Set<String>()
        func add(_ p: String) { if seen.insert(p).inserted { out.append(p) } }
        for p in options.paths {
            if Self.isGlob(p) {
                var g = glob_t()
                defer { globfree(&g) }
                if glob(p, 0, nil, &g) == 0 {
                    var found: [String] = []
                    for i in 0..<Int(g.gl_pathc) { if let c = g.gl_pathv[i] { found.append(String(cString: c)) } }
                    for f in found.sorted() where isRegular(f) { add(f) }
                }
                continue
            }
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: p, isDirectory: &isDir) {
                if isDir.boolValue {
                    let names = ((try? FileManager.default.contentsOfDirectory(atPath: p)) ?? []).sorted()
                    for n in names where !n.hasPrefix(".") {
                        let full = (p as NSString).appendingPathComponent(n)
                        if isRegular(full) { add(full) }
                    }
                } else {
                    add(p)
                }
                warnedMissing.remove(p)
            } else if warnedMissing.insert(p).inserted {
                note("\(p): not there (yet); waiting for it to appear")
            }
        }
        return out
    }

    func isRegular(_ p: String) -> Bool {
        var st = stat()
        return stat(p, &st) == 0 && (st.st_mode & S_IFMT) == S_IFREG
    }

    /// Says once per path that its record kind cannot be told.
    func noteUnknownKind(_ path: String) {
        if warnedMissing.insert("kind:" + path).inserted {
            note("\(path): not read (its name does not say users*, content*, interactions*, follows*, spend* or outcomes*; pass --kind)")
        }
    }

    func kindAndFormat(_ path: String) -> (RecordKind, InputFormat, FieldMapping?)? {
        let base = (path as NSString).lastPathComponent
        let mapping = named ?? options.mapping?.profile(forFile: base)
        guard let kind = options.kind ?? mapping?.kind ?? RecordKind.infer(fromFileName: base) else { return nil }
        let lower = base.lowercased()
        // A rotated file keeps its format: interactions.csv.1 is CSV.
        let format: InputFormat = lower.hasSuffix(".csv") || lower.contains(".csv.") ? .csv : .jsonl
        return (kind, format, mapping)
    }

    /// Hash of `count` bytes at `at` of an open file (nil when they are not all there).
    static func hash(fd: Int32, at: Int = 0, count: Int) -> UInt64? {
        guard count > 0 else { return 0 }
        var buf = [UInt8](repeating: 0, count: count)
        let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(at)) }
        guard n == count else { return nil }
        return StableHash.fnv1a64(buf)
    }

    /// The hash of the bytes just before `offset` (hex), as the checkpoint keeps it.
    static func tail(fd: Int32, offset: Int) -> String? {
        let n = min(offset, tailLength)
        return hash(fd: fd, at: offset - n, count: n).map { String($0, radix: 16) }
    }

    /// Whether an open file is the one a checkpoint entry describes, with its acknowledged part unchanged.
    static func matches(_ e: FollowState.Entry, fd: Int32, size: Int) -> Bool {
        guard let fp = hash(fd: fd, count: e.fingerprintBytes), String(fp, radix: 16) == e.fingerprint,
              size >= e.offset else { return false }
        if let t = e.tail, tail(fd: fd, offset: e.offset) != t { return false }
        return true
    }

    /// Opens `path` and checks that it is still the file `expected` names (a rotation between the `stat` and the
    /// `open` would give another file).
    func open(_ path: String, expected: (UInt64, UInt64)) -> (Int32, stat)? {
        let fd = Glibc.open(path, O_RDONLY)
        guard fd >= 0 else {
            note("\(path): cannot open (\(String(cString: strerror(errno)))); trying again")
            return nil
        }
        var st = stat()
        guard fstat(fd, &st) == 0, UInt64(st.st_dev) == expected.0, UInt64(st.st_ino) == expected.1 else {
            Glibc.close(fd)
            return nil
        }
        return (fd, st)
    }

    /// Starts following an open file: from its checkpoint when the entry matches, else from its start.
    func track(path: String, fd: Int32, st: stat, retired: Bool) -> Tracked? {
        let dev = UInt64(st.st_dev), ino = UInt64(st.st_ino), size = Int(st.st_size)
        var offset = 0, line = 0
        var kf = kindAndFormat(path)
        if let e = state.files.first(where: { $0.device == dev && $0.inode == ino }) {
            if Self.matches(e, fd: fd, size: size) {
                offset = e.offset; line = e.line
                if let k = RecordKind(rawValue: e.kind), let f = InputFormat(rawValue: e.format) { kf = (k, f, kf?.2 ?? named) }
            } else if Self.hash(fd: fd, count: e.fingerprintBytes).map({ String($0, radix: 16) }) == e.fingerprint {
                note("\(path): changed before its checkpoint (truncated while stopped); reading it from its start")
            }
        }
        guard let (kind, format, mapping) = kf else {
            Glibc.close(fd)
            noteUnknownKind(path)
            return nil
        }
        let t = Tracked(number: nextNumber, path: path, fd: fd, device: dev, inode: ino, offset: offset, line: line,
                        kind: kind, format: format, mapping: mapping)
        t.parser.pseudonymizer = options.pseudonymizer
        nextNumber += 1
        if offset > 0, format == .csv, let header = try? LineReader.firstNonBlankLine(path: path) {
            _ = header.withUnsafeBufferPointer { t.parser.parse($0) }
        }
        refreshFingerprint(t, size: size)
        if retired { t.retiredSince = .now }
        tracked.append(t)
        note(offset > 0 ? "\(path): resuming at byte \(offset) (line \(line))" : "\(path): following from its start")
        return t
    }

    /// Looks the inputs up again: new files are opened (resuming from the checkpoint when their identity is in
    /// it), a name that now names another file retires the old one (rotation), and files that vanished or no
    /// longer match are retired too.
    func discover() {
        let paths = currentPaths()
        var present = Set<Int>()
        for path in paths {
            var st = stat()
            guard stat(path, &st) == 0 else { continue }
            let dev = UInt64(st.st_dev), ino = UInt64(st.st_ino)
            if let t = tracked.first(where: { $0.device == dev && $0.inode == ino }) {
                // The first name that leads to it wins (a hard link or a symlink beside it changes nothing).
                if t.path != path, !present.contains(t.number) {
                    note("\(t.path): now named \(path); following it there")
                    t.path = path
                }
                if t.retiredSince != nil { t.retiredSince = nil }
                present.insert(t.number)
                continue
            }
            if kindAndFormat(path) == nil && state.files.first(where: { $0.device == dev && $0.inode == ino }) == nil {
                noteUnknownKind(path)
                continue
            }
            guard let (fd, st2) = open(path, expected: (dev, ino)) else { continue }
            if let old = tracked.first(where: { $0.path == path && $0.retiredSince == nil }) {
                note("\(path): replaced by a new file (rotated); reading the old one to its end, then the new one from its start")
                old.retiredSince = .now
            }
            if let t = track(path: path, fd: fd, st: st2, retired: false) { present.insert(t.number) }
        }
        for t in tracked where !present.contains(t.number) && t.retiredSince == nil {
            note("\(t.path): gone or renamed; reading it to its end")
            t.retiredSince = .now
        }
    }

    /// At start: files of the checkpoint that no input names any more but that are still in their directory under
    /// another name (rotated while the follower was stopped) are read to their end.
    func recoverRotated() {
        for e in state.files where !tracked.contains(where: { $0.device == e.device && $0.inode == e.inode }) {
            let dir = (e.path as NSString).deletingLastPathComponent
            let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.isEmpty ? "." : dir)) ?? []
            for name in names.sorted() {
                let full = dir.isEmpty ? name : (dir as NSString).appendingPathComponent(name)
                var st = stat()
                guard stat(full, &st) == 0, UInt64(st.st_dev) == e.device, UInt64(st.st_ino) == e.inode,
                      Int(st.st_size) > e.offset, let (fd, st2) = open(full, expected: (e.device, e.inode)) else { continue }
                if Self.matches(e, fd: fd, size: Int(st2.st_size)) {
                    note("\(full): \(e.path) as it was rotated while stopped; reading it to its end")
                    _ = track(path: full, fd: fd, st: st2, retired: true)
                } else {
                    Glibc.close(fd)
                }
                break
            }
        }
    }

    func refreshFingerprint(_ t: Tracked, size: Int) {
        guard t.fingerprintBytes < Self.fingerprintLength, size > t.fingerprintBytes else { return }
        let n = min(size, Self.fingerprintLength)
        if let fp = Self.hash(fd: t.fd, count: n) { t.fingerprint = fp; t.fingerprintBytes = n }
    }

    func entry(_ t: Tracked) -> FollowState.Entry {
        FollowState.Entry(path: t.path, device: t.device, inode: t.inode, fingerprint: String(t.fingerprint, radix: 16),
                          fingerprintBytes: t.fingerprintBytes, offset: t.offset, line: t.line, kind: t.kind.rawValue,
                          format: t.format.rawValue, updated: Int64(Date().timeIntervalSince1970),
                          tail: Self.tail(fd: t.fd, offset: t.offset))
    }

    // MARK: reading

    /// One poll: discovery, then the new complete lines of the files, up to `limit` records, starting with a
    /// different file each poll so that one file's backlog does not hold the others back. Retired files that
    /// stopped growing are read to their end (their last line counts without a newline) and closed.
    func poll(limit: Int) throws -> FollowRound {
        if pollCount == 0 { discover(); recoverRotated() } else { discover() }
        pollCount += 1
        var round = FollowRound()
        let n = tracked.count
        for k in 0..<n {
            if round.read >= limit { round.more = true; break }
            try read(tracked[(k + pollCount) % n], into: &round, limit: limit)
        }
        var closing = Set<Int>()
        for t in tracked {
            guard let since = t.retiredSince, ContinuousClock.now - max(since, t.lastGrowth) >= options.retireAfter,
                  round.read < limit else { continue }
            try read(t, into: &round, limit: limit, finalLine: true)
            var st = stat()
            guard fstat(t.fd, &st) == 0, Int(st.st_size) == t.offset else { continue }  // more than the limit: next poll
            round.positions[t.number] = entry(t)
            Glibc.close(t.fd)
            t.fd = -1
            closing.insert(t.number)
            round.closed += 1
            note("\(t.path): read to its end (\(t.line) lines) and closed")
        }
        tracked.removeAll { closing.contains($0.number) }
        return round
    }

    /// Bytes in the followed files beyond what was read, and whether every file with such bytes has not grown for
    /// `stable` (its tail is an unfinished last line that nobody is finishing).
    func behind(stable: Duration? = nil) -> (bytes: Int, stable: Bool) {
        var bytes = 0
        var allStable = true
        for t in tracked {
            var st = stat()
            guard fstat(t.fd, &st) == 0 else { continue }
            let b = max(0, Int(st.st_size) - t.offset)
            bytes += b
            if b > 0, let stable, ContinuousClock.now - t.lastGrowth < stable { allStable = false }
        }
        return (bytes, allStable)
    }

    /// Reads every file's unfinished last line as a record (before `--idle-exit` stops: the one-shot ingest
    /// reads a last line without a newline too).
    func finishTails(limit: Int) throws -> FollowRound {
        var round = FollowRound()
        for t in tracked where round.read < limit { try read(t, into: &round, limit: limit, finalLine: true) }
        return round
    }

    func read(_ t: Tracked, into round: inout FollowRound, limit: Int, finalLine: Bool = false) throws {
        var st = stat()
        guard t.fd >= 0, fstat(t.fd, &st) == 0 else { return }
        let size = Int(st.st_size)
        if size > t.lastSize {
            if t.lastSize >= 0 { t.lastGrowth = .now }
            t.lastSize = size
        }
        // Truncated (copytruncate), even when it grew back past the offset before this poll: shorter, other first
        // bytes, or other bytes just before the offset.
        var rewritten = t.fingerprintBytes > 0 && (size < t.fingerprintBytes
            || Self.hash(fd: t.fd, count: t.fingerprintBytes) != t.fingerprint)
        if !rewritten, t.offset > 0, size >= t.offset, let seen = tailSeen[t.number],
           Self.tail(fd: t.fd, offset: t.offset) != seen {
            rewritten = true
        }
        if size < t.offset || rewritten {
            note("\(t.path): truncated (\(size) bytes, \(t.offset) were read); reading it again from its start")
            t.offset = 0; t.line = 0; t.fingerprintBytes = 0; t.lastSize = size
            t.parser = RecordParser(kind: t.kind, format: t.format, mapping: t.mapping)
            t.parser.pseudonymizer = options.pseudonymizer
            round.positions[t.number] = entry(t)
        }
        refreshFingerprint(t, size: size)
        defer { tailSeen[t.number] = t.offset > 0 ? Self.tail(fd: t.fd, offset: t.offset) : nil }
        guard size > t.offset else { return }
        var chunk = [UInt8](repeating: 0, count: min(Self.readChunk, size - t.offset))
        while round.read < limit {
            let want = min(chunk.count, size - t.offset)
            guard want > 0 else { break }
            let n = chunk.withUnsafeMutableBytes { pread(t.fd, $0.baseAddress, want, off_t(t.offset)) }
            if n < 0 { if errno == EINTR { continue }; throw ChorusError(.storage, "read error in \(t.path): \(String(cString: strerror(errno)))") }
            if n == 0 { break }
            let consumed = try chunk.withUnsafeBufferPointer { all -> Int in
                let buf = UnsafeBufferPointer(rebasing: all[0..<n])
                var start = 0
                if t.offset == 0, n >= 3, buf[0] == 0xEF, buf[1] == 0xBB, buf[2] == 0xBF { start = 3 }
                var i = start
                while i < n, round.read < limit {
                    guard let nl = buf[i...].firstIndex(of: 0x0A) else { break }
                    try take(t, UnsafeBufferPointer(rebasing: buf[i..<nl]), into: &round)
                    i = nl + 1
                }
                if finalLine, i < n, n == size - t.offset, round.read < limit {
                    try take(t, UnsafeBufferPointer(rebasing: buf[i..<n]), into: &round)
                    i = n
                }
                if round.read < limit, n - i > RecordParser.maxLineBytes, buf[i..<n].firstIndex(of: 0x0A) == nil {
                    // A line longer than a record may be: reject it and skip to its end once that end is written.
                    guard let end = try lineEnd(t, from: t.offset + n, size: size) else { return i }
                    t.line += 1; t.read += 1; t.rejected += 1
                    round.read += 1; round.rejected += 1
                    try rejects.write(file: t.path, line: t.line,
                                      reason: "record too large (\(end - t.offset - i) bytes, limit \(RecordParser.maxLineBytes))",
                                      raw: UnsafeBufferPointer(rebasing: buf[i..<min(n, i + LineReader.tooLongPrefixBytes)]))
                    return end + 1 - t.offset
                }
                return i
            }
            if consumed == 0 { break }
            t.offset += consumed
            round.positions[t.number] = entry(t)
            if n < want { break }
        }
    }

    /// Per tracked file: the tail hash at its offset after the last poll (a change means it was rewritten).
    var tailSeen: [Int: String] = [:]

    /// The offset of the next line end at or after `from`, or nil when it is not written yet.
    func lineEnd(_ t: Tracked, from: Int, size: Int) throws -> Int? {
        var pos = from
        var buf = [UInt8](repeating: 0, count: 1 << 16)
        while pos < size {
            let n = buf.withUnsafeMutableBytes { pread(t.fd, $0.baseAddress, min($0.count, size - pos), off_t(pos)) }
            if n <= 0 { return nil }
            if let i = buf[0..<n].firstIndex(of: 0x0A) { return pos + i }
            pos += n
        }
        return nil
    }

    func take(_ t: Tracked, _ line: UnsafeBufferPointer<UInt8>, into round: inout FollowRound) throws {
        t.line += 1
        if line.count > RecordParser.maxLineBytes {
            t.read += 1; t.rejected += 1; round.read += 1; round.rejected += 1
            try rejects.write(file: t.path, line: t.line, reason: "record too large (\(line.count) bytes, limit \(RecordParser.maxLineBytes))",
                              raw: UnsafeBufferPointer(rebasing: line.prefix(LineReader.tooLongPrefixBytes)))
            return
        }
        switch t.parser.parse(line) {
        case .skip:
            return
        case let .reject(reason):
            t.read += 1; t.rejected += 1; round.read += 1; round.rejected += 1
            try rejects.write(file: t.path, line: t.line, reason: reason, raw: line)
        case let .record(rec):
            t.read += 1; round.read += 1
            round.puts += try Wire.puts(for: rec, placement: placement)
        }
    }

    /// Writes the acknowledged positions into the checkpoint file (after the rejects of those lines are on disk).
    /// Entries are dropped only for files that are gone (no file at their path has their identity) and not
    /// followed, oldest first, beyond `FollowState.maxEntries`.
    func commit(_ positions: [Int: FollowState.Entry]) throws {
        guard !positions.isEmpty else { return }
        try rejects.sync()
        for (_, e) in positions {
            if let i = state.files.firstIndex(where: { $0.device == e.device && $0.inode == e.inode }) {
                state.files[i] = e
            } else {
                state.files.append(e)
            }
        }
        if state.files.count > FollowState.maxEntries {
            let followed = Set(tracked.map { "\($0.device)/\($0.inode)" })
            let gone = state.files.indices.filter { i in
                let e = state.files[i]
                var st = stat()
                return !followed.contains("\(e.device)/\(e.inode)")
                    && !(stat(e.path, &st) == 0 && UInt64(st.st_dev) == e.device && UInt64(st.st_ino) == e.inode)
            }.sorted { state.files[$0].updated < state.files[$1].updated }
            let drop = Set(gone.prefix(state.files.count - FollowState.maxEntries))
            state.files = state.files.indices.filter { !drop.contains($0) }.map { state.files[$0] }
        }
        try state.save(options.statePath)
    }

    func fileReports() -> [FollowFileReport] {
        tracked.map { t in
            let e = state.files.first { $0.device == t.device && $0.inode == t.inode }
            return FollowFileReport(path: t.path, kind: t.kind.rawValue, read: t.read, rejected: t.rejected,
                                    offset: e?.offset ?? 0, line: e?.line ?? 0)
        }
    }

    func takeEvents() -> [String] { defer { events = [] }; return events }

    func closeAll() throws {
        for t in tracked where t.fd >= 0 { Glibc.close(t.fd); t.fd = -1 }
        tracked = []
        try rejects.close()
    }
}

/// `chorus ingest --follow`: follows growing files like `tail -F` and sends their records in small batches, with a
/// checkpoint per file written only after the batch is acknowledged. Re-sending after a crash is harmless: the
/// workers count a record they hold already as a duplicate, and store it once.
public final class FollowIngestor: Sendable {
    let client: ChorusClient
    let options: FollowOptions
    let queue = BlockingQueue(label: "chorus.ingest.follow")
    let stopFlag = Atomic<Bool>(false)

    public init(client: ChorusClient, options: FollowOptions) {
        self.client = client
        self.options = options
    }

    /// Asks the run to stop after the round in flight is acknowledged and checkpointed.
    public func stop() { stopFlag.store(true, ordering: .relaxed) }

    /// Holds an exclusive lock on `<state>.lock` for the life of the run: two followers on one checkpoint would
    /// each skip what the other acknowledged.
    static func lock(_ statePath: String) throws -> Int32 {
        let dir = (statePath as NSString).deletingLastPathComponent
        if !dir.isEmpty { try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) }
        let fd = open(statePath + ".lock", O_RDWR | O_CREAT, 0o644)
        guard fd >= 0 else {
            throw ChorusError(.storage, "cannot create \(statePath).lock: \(String(cString: strerror(errno)))",
                              hint: "pass a writable --state path")
        }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            throw ChorusError(.conflict, "another `chorus ingest --follow` is using the checkpoint \(statePath)",
                              hint: "stop it first, or give this one its own --state file")
        }
        return fd
    }

    public func run(progress: (@Sendable (FollowProgress) -> Void)? = nil,
                    event: (@Sendable (String) -> Void)? = nil) async throws -> FollowReport {
        if options.paths.isEmpty { throw ChorusError(.usage, "no input files given") }
        let statePath = options.statePath
        let lockFD = try await queue.run { try Self.lock(statePath) }
        defer { close(lockFD) }
        let start = ContinuousClock.now
        let map = try await client.partitionMapWithOwners()
        try Ingestor.checkPseudonyms(map, options.pseudonymizer)
        let state = try await queue.run { try FollowState.load(statePath) }
        let runId = RejectsWriter.newRunId()
        let reader = try FollowReader(options: options, partitionCount: map.partitionCount, state: state, runId: runId)
        var ingest = IngestOptions(paths: options.paths, rejectsPath: options.rejectsPath)
        ingest.retryWindow = options.retryWindow
        let sender = Ingestor(client: client, options: ingest)
        let mapBox = Locked(map)
        let report = Locked(FollowReport(stateFile: options.statePath))
        let emit: @Sendable ([String]) -> Void = { events in
            report.withLock { r in
                r.events += events
                if r.events.count > 200 { r.events.removeFirst(r.events.count - 200) }
            }
            for e in events { event?(e) }
        }
        // Incremental features on its own task, so that a slow or unreachable coordinator never holds up reading.
        let acknowledgedSinceFeatures = Locked(0)
        let features = Task { [client, options] in
            guard let every = options.featuresEvery else { return }
            var job: String?
            while !Task.isCancelled {
                try? await Task.sleep(for: every)
                if Task.isCancelled { break }
                guard acknowledgedSinceFeatures.withLock({ $0 }) > 0 else { continue }
                if let id = job, let j = try? await client.jobStatus(id), j.state == .queued || j.state == .running { continue }
                let n = acknowledgedSinceFeatures.withLock { v in defer { v = 0 }; return v }
                do {
                    job = try await client.submit(kind: "features", params: ["mode": "incremental"]).id
                    report.withLock { $0.featureRuns += 1 }
                    emit(["submitted incremental features job \(job!) (\(n) records since the last)"])
                } catch {
                    acknowledgedSinceFeatures.withLock { $0 += n }
                    emit(["could not submit the incremental features job: \(error); trying again in \(Int(every.seconds)) s"])
                }
            }
        }
        do {
            try await follow(reader: reader, sender: sender, map: mapBox, report: report, emit: emit,
                             acknowledged: acknowledgedSinceFeatures, progress: progress, start: start)
        } catch {
            features.cancel()
            try? await queue.run { try reader.closeAll() }
            throw error
        }
        features.cancel()
        // What was acknowledged since the last incremental job gets one more, so that it is not left unprofiled.
        if options.featuresEvery != nil, acknowledgedSinceFeatures.withLock({ $0 }) > 0 {
            if let j = try? await client.submit(kind: "features", params: ["mode": "incremental"]) {
                report.withLock { $0.featureRuns += 1 }
                emit(["submitted incremental features job \(j.id) for the last records"])
            }
        }
        let files = try await queue.run { reader.fileReports() }
        emit(try await queue.run { reader.takeEvents() })
        try await queue.run { try reader.closeAll() }
        return report.withLock { r in
            r.files = files
            r.rejectsFile = r.rejected > 0 ? options.rejectsPath : nil
            r.seconds = (ContinuousClock.now - start).seconds
            return r
        }
    }

    /// The read-send-checkpoint loop, until a stop request or `idleExit`.
    func follow(reader: FollowReader, sender: Ingestor, map: Locked<Chorus_V1_PartitionMap>, report: Locked<FollowReport>,
                emit: @Sendable ([String]) -> Void, acknowledged: Locked<Int>,
                progress: (@Sendable (FollowProgress) -> Void)?, start: ContinuousClock.Instant) async throws {
        let limit = options.batchSize * options.maxInFlight
        var pending = FollowRound()
        var firstPendingAt: ContinuousClock.Instant?
        var lastActivity = ContinuousClock.now
        var lastProgress = ContinuousClock.now
        var sawAnyFile = false
        while true {
            let stopping = stopFlag.load(ordering: .relaxed)
            if !stopping {
                let room = max(1, limit - pending.read)
                let (round, events, files) = try await queue.run { () throws -> (FollowRound, [String], Int) in
                    let r = try reader.poll(limit: room)
                    return (r, reader.takeEvents(), reader.tracked.count)
                }
                emit(events)
                if files > 0 { sawAnyFile = true }
                if !round.isEmpty {
                    if round.read > 0 || round.closed > 0 { lastActivity = .now }
                    if firstPendingAt == nil { firstPendingAt = .now }
                    pending.merge(round)
                }
            }
            let due = firstPendingAt.map { ContinuousClock.now - $0 >= options.batchDelay } ?? false
            if !pending.isEmpty, stopping || due || pending.read >= limit {
                let (puts, superseded) = Self.lastVersions(pending.puts)
                let counts = try await deliver(puts, sender: sender, map: map, event: { emit([$0]) })
                let positions = pending.positions
                try await queue.run { try reader.commit(positions) }
                let (read, rejected) = (pending.read, pending.rejected)
                report.withLock { r in
                    r.read += read
                    r.rejected += rejected
                    r.stored += counts.stored
                    r.duplicates += counts.duplicates + superseded
                    r.rounds += 1
                }
                acknowledged.withLock { $0 += counts.stored + counts.duplicates }
                pending = FollowRound()
                firstPendingAt = nil
            }
            if stopping && pending.isEmpty { return }
            if let progress, ContinuousClock.now - lastProgress >= .seconds(1) {
                lastProgress = .now
                let (files, behind) = try await queue.run { (reader.tracked.count, reader.behind().bytes) }
                let r = report.withLock { $0 }
                progress(FollowProgress(files: files, read: r.read + pending.read, acknowledged: r.stored + r.duplicates,
                                        rejected: r.rejected + pending.rejected, pending: pending.read,
                                        behindBytes: behind, seconds: (ContinuousClock.now - start).seconds))
            }
            if let idle = options.idleExit, pending.isEmpty, ContinuousClock.now - lastActivity >= idle {
                let (bytes, stable) = try await queue.run { reader.behind(stable: idle) }
                if bytes == 0 && (sawAnyFile || ContinuousClock.now - start >= idle) { return }
                if bytes > 0 && stable {
                    // Only unfinished last lines are left, and nobody finished them: they count, as in a one-shot ingest.
                    let tails = try await queue.run { try reader.finishTails(limit: limit) }
                    if !tails.isEmpty { pending.merge(tails); firstPendingAt = .now - options.batchDelay; continue }
                }
            }
            if !pending.more { try await Task.sleep(for: options.pollInterval) }
        }
    }

    /// The puts of a round with only the last version of each key: a record given twice within a round is stored
    /// as its last version, although the round's batches are sent at the same time. Returns the number of counted
    /// copies dropped (reported as duplicates, as batch ingest reports superseded versions).
    static func lastVersions(_ puts: [Chorus_V1_Put]) -> ([Chorus_V1_Put], Int) {
        var last: [Data: Int] = [:]
        last.reserveCapacity(puts.count)
        for (i, p) in puts.enumerated() {
            var key = Data(capacity: p.keyID.count + 5)
            withUnsafeBytes(of: p.partition.bigEndian) { key.append(contentsOf: $0) }
            key.append(UInt8(truncatingIfNeeded: p.role.rawValue))
            key.append(p.keyID)
            last[key] = i
        }
        guard last.count < puts.count else { return (puts, 0) }
        let keep = Set(last.values)
        var dropped = 0
        var out: [Chorus_V1_Put] = []
        out.reserveCapacity(keep.count)
        for (i, p) in puts.enumerated() {
            if keep.contains(i) { out.append(p) } else if p.counted { dropped += 1 }
        }
        return (out, dropped)
    }

    /// Sends a round's puts, grouped by primary in batches of `batchSize`, all at once; retries the whole round
    /// until every batch is acknowledged (a resent record counts as a duplicate, and is stored once). A round that
    /// cannot be delivered within the retry window is reported and tried again: the checkpoint does not move.
    func deliver(_ puts: [Chorus_V1_Put], sender: Ingestor, map: Locked<Chorus_V1_PartitionMap>,
                 event: (String) -> Void) async throws -> (stored: Int, duplicates: Int) {
        guard !puts.isEmpty else { return (0, 0) }
        var attempt = 0
        while true {
            attempt += 1
            let m = map.withLock { $0 }
            var byNode: [String: [Chorus_V1_Put]] = [:]
            for p in puts { byNode[m.assignments[Int(p.partition)].owner, default: []].append(p) }
            var batches: [Ingestor.Outbound] = []
            for (node, list) in byNode.sorted(by: { $0.key < $1.key }) {
                var i = 0
                while i < list.count {
                    let part = Array(list[i..<min(list.count, i + options.batchSize)])
                    batches.append(Ingestor.Outbound(node: node, puts: part, counted: part.filter(\.counted).count))
                    i += options.batchSize
                }
            }
            let totals = Locked((stored: 0, duplicates: 0))
            let failure = Locked<(any Error)?>(nil)
            await withDiscardingTaskGroup { group in
                for b in batches {
                    group.addTask {
                        do {
                            let r = try await sender.send(b, map: map)
                            totals.withLock { $0.stored += Int(r.stored); $0.duplicates += Int(r.duplicates) }
                        } catch {
                            failure.withLock { $0 = $0 ?? error }
                        }
                    }
                }
            }
            let got = totals.withLock { $0 }
            guard let error = failure.withLock({ $0 }) else { return got }
            // A refusal that a retry cannot change (the records or the request are invalid for this cluster) stops
            // the follower with the cluster's reason; the checkpoint stays before these records.
            if let e = error as? ChorusError, [.usage, .invalidInput, .internal, .conflict].contains(e.code) {
                throw ChorusError(e.code, "a batch was refused: \(e.message)",
                                  hint: "the checkpoint stays before it; fix the cause, then start the follower again")
            }
            if stopFlag.load(ordering: .relaxed) {
                throw ChorusError(.unavailable, "stopping with a batch not acknowledged: \(error)",
                                  hint: "the checkpoint was not moved: the next run sends these records again (idempotent)")
            }
            event("a round of \(puts.count) rows was not acknowledged (\(error)); the checkpoint stays, "
                  + "retrying in 5 s (attempt \(attempt))")
            try await Task.sleep(for: .seconds(5))
            if let fresh = try? await client.partitionMap() {
                map.withLock { if fresh.version >= $0.version { $0 = fresh } }
            }
        }
    }
}
