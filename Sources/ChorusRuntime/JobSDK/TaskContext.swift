import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Synchronization

/// Set when a job is cancelled or released on this worker. Checked by the runtime around every task and by a
/// job's long loops (`TaskContext.checkCancelled()`), also from inside `compute` closures.
public final class CancellationFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    private let setAt = Mutex<ContinuousClock.Instant?>(nil)
    public init() {}
    public var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() {
        setAt.withLock { if $0 == nil { $0 = .now } }
        flag.store(true, ordering: .relaxed)
    }
    /// When it was set (nil: not set).
    var since: ContinuousClock.Instant? { setAt.withLock { $0 } }
}

/// A read view of one partition's data on its primary. Its calls block (they read RocksDB): use them only
/// inside `TaskContext.compute { }`.
public struct PartitionView: Sendable {
    public let partition: UInt32
    let store: Store

    /// Visits every record of `role` in key order; `body` returns false to stop. The key starts with the 5-byte
    /// partition and role prefix (`PartitionView.id(of:)` gives the id after it).
    public func scan(role: UInt8, _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
        try store.scan(prefix: ShardKeys.prefix(partition: partition, role: role), body)
    }

    /// Visits the records of `role` whose id starts with `idPrefix` (e.g. one user's interactions: "u1\0").
    public func scan(role: UInt8, idPrefix: [UInt8],
                     _ body: (_ key: UnsafeRawBufferPointer, _ value: UnsafeRawBufferPointer) throws -> Bool) throws {
        try store.scan(prefix: ShardKeys.prefix(partition: partition, role: role) + idPrefix, body)
    }

    public func get(role: UInt8, id: String) throws -> [UInt8]? {
        try store.get(ShardKeys.key(partition: partition, role: role, id: Array(id.utf8)))
    }

    /// The id of a key (everything after the 5-byte prefix).
    public static func id(of key: UnsafeRawBufferPointer) -> String {
        String(decoding: key[5...], as: UTF8.self)
    }

    /// The first part of a two-part id (up to the 0x00 separator): the user of a by-user interaction key.
    public static func groupId(of key: UnsafeRawBufferPointer) -> String {
        let rest = key[5...]
        let end = rest.firstIndex(of: 0) ?? rest.endIndex
        return String(decoding: key[5..<end], as: UTF8.self)
    }

    /// Streams the interactions of one role grouped by their first key part (an id's records are contiguous).
    /// Returns the records read.
    public func interactionGroups(role: UInt8, _ body: (String, [InteractionRecord]) throws -> Void) throws -> Int {
        var current: String?
        var group: [InteractionRecord] = []
        var n = 0
        try scan(role: role) { key, value in
            let gid = Self.groupId(of: key)
            if gid != current {
                if let c = current { try body(c, group) }
                current = gid
                group.removeAll(keepingCapacity: true)
            }
            let m = try Chorus_V1_Interaction(borrowing: value)
            if let rec = Wire.decode(m) { group.append(rec) }
            n += 1
            return true
        }
        if let c = current { try body(c, group) }
        return n
    }

    /// Streams the records of one role grouped by their first key part, without decoding: `record` sees each raw
    /// value, and `emit` is called with a group's id after its last record. Only one `String` is made per group.
    /// For aggregates that fold records into a builder (`FeaturesJob`). Returns the records read.
    public func groups(role: UInt8, emit: (String) throws -> Void,
                       record: (_ value: UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        var current: [UInt8] = []
        var open = false
        var n = 0
        try scan(role: role) { key, value in
            let rest = UnsafeRawBufferPointer(rebasing: key[5...])
            let gid = UnsafeRawBufferPointer(rebasing: rest[..<(rest.firstIndex(of: 0) ?? rest.endIndex)])
            if !open || !Self.same(gid, current) {
                if open { try emit(String(decoding: current, as: UTF8.self)) }
                current.removeAll(keepingCapacity: true)
                current.append(contentsOf: gid)
                open = true
            }
            try record(value)
            n += 1
            return true
        }
        if open { try emit(String(decoding: current, as: UTF8.self)) }
        return n
    }

    /// The number of records of `role` per first key part (follows per user), one `String` per group.
    public func groupCounts(role: UInt8) throws -> [String: Int] {
        var out: [String: Int] = [:]
        var n = 0
        // `+=`, as the per-key count did: byte-distinct ids can be equal Strings (invalid UTF-8 becomes U+FFFD, and
        // String equality is canonical, so "é" in NFC and NFD are one key), and such runs are not adjacent.
        _ = try groups(role: role, emit: { out[$0, default: 0] += n; n = 0 }, record: { _ in n += 1 })
        return out
    }

    @inline(__always) static func same(_ a: UnsafeRawBufferPointer, _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return b.withUnsafeBytes { b in
            guard let x = a.baseAddress, let y = b.baseAddress else { return true }
            return memcmp(x, y, a.count) == 0
        }
    }

    /// The partition's channel spend records (`spend*` ingest files), in key order: by channel, then date, period,
    /// campaign, arm and segment. A spend record is placed by its whole identity, so one channel's history is
    /// spread over all partitions: a job gathers it from every partition's task (`TaskContext.spendRecords()`).
    public func spendRecords() throws -> [SpendRecord] {
        var out: [SpendRecord] = []
        try scan(role: ShardKeys.role(.spend)) { _, value in
            // The worker accepts only a day or a week on write, so every stored record decodes.
            if let r = Wire.decode(try Chorus_V1_Spend(borrowing: value)) { out.append(r) }
            return true
        }
        return out
    }

    /// Streams the partition's campaign outcomes grouped by user (a user's outcomes are contiguous: the key id starts
    /// with the user id). Only the records of `campaign` are passed on (all when nil). Returns the records read.
    public func outcomeGroups(campaign: String? = nil, _ body: (String, [OutcomeRecord]) throws -> Void) throws -> Int {
        var current: String?
        var group: [OutcomeRecord] = []
        var n = 0
        try scan(role: ShardKeys.role(.outcome)) { key, value in
            let gid = Self.groupId(of: key)
            if gid != current {
                if let c = current, !group.isEmpty { try body(c, group) }
                current = gid
                group.removeAll(keepingCapacity: true)
            }
            n += 1
            let m = try Chorus_V1_Outcome(borrowing: value)
            if campaign == nil || m.campaign == campaign, let rec = Wire.decode(m) { group.append(rec) }
            return true
        }
        if let c = current, !group.isEmpty { try body(c, group) }
        return n
    }
}

/// Derived data a task writes into its partition. The runtime writes it on the primary and replicates it to the
/// partition's replicas like ingested data; it is durable when `TaskContext.write` returns.
public struct DerivedWrites: Sendable {
    public let partition: UInt32
    var ops: [Chorus_V1_ReplicaOp] = []
    var roles = Set<UInt8>()

    public init(partition: UInt32) { self.partition = partition }

    /// Deletes every record of `role` in the partition (write it first to replace a previous run's results).
    public mutating func clear(role: UInt8) {
        let pre = ShardKeys.prefix(partition: partition, role: role)
        guard let end = Store.prefixEnd(pre) else { return }
        var op = Chorus_V1_ReplicaOp()
        op.partition = partition
        op.key = Data(pre)
        op.rangeEnd = Data(end)
        ops.append(op)
        roles.insert(role)
    }

    public mutating func put(role: UInt8, id: String, _ value: [UInt8]) {
        var op = Chorus_V1_ReplicaOp()
        op.partition = partition
        op.key = Data(ShardKeys.key(partition: partition, role: role, id: Array(id.utf8)))
        op.value = Data(value)
        ops.append(op)
        roles.insert(role)
    }

    /// Deletes one key of the partition (for example a change marker row a job has processed).
    public mutating func delete(key: [UInt8]) {
        var op = Chorus_V1_ReplicaOp()
        op.partition = partition
        op.key = Data(key)
        op.delete = true
        ops.append(op)
    }

    public var isEmpty: Bool { ops.isEmpty }
    public var count: Int { ops.count }
}

/// One task as its job sees it on the worker: which job, stage and partition, the partition's data, the worker's
/// compute threads, derived writes and cancellation.
public struct TaskContext: Sendable {
    public let jobID: String
    public let kind: String
    public let stage: String
    public let partition: UInt32
    public let params: JobParams
    public let attempt: UInt32
    public let workerName: String
    public let data: PartitionView
    public let cancellation: CancellationFlag
    let worker: Worker

    /// Runs blocking work (store reads, CPU loops) on the worker's compute threads (one per core), never on the
    /// async pool. Checks for cancellation before and after.
    public func compute<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try checkCancelled()
        let flag = cancellation
        let job = jobID
        let out = try await worker.computeQueue.run { () throws -> T in
            if flag.isSet { throw Self.cancelledError(job) }
            return try body()
        }
        try checkCancelled()
        return out
    }

    /// This partition's channel spend and outcomes (`PartitionView.spendRecords()`), read on the compute threads.
    /// A job that needs the spend history returns them from each partition's task and merges them on the
    /// coordinator (sorted by channel and date there: the partitions hold interleaved slices of each channel).
    public func spendRecords() async throws -> [SpendRecord] {
        let view = data
        return try await compute { try view.spendRecords() }
    }

    /// Writes derived data of this partition on the primary and its replicas (durable when it returns).
    /// The runtime also records which job wrote each role of the partition (`provenance`).
    public func write(_ w: DerivedWrites) async throws {
        try checkCancelled()
        guard w.partition == partition else {
            throw ChorusError(.internal, "job \(kind) wrote partition \(w.partition) from a task of partition \(partition)")
        }
        guard !w.isEmpty else { return }
        var ops = w.ops
        for role in w.roles.sorted() {
            var op = Chorus_V1_ReplicaOp()
            op.partition = partition
            op.key = Data(ShardKeys.provenanceKey(partition: partition, role: role))
            op.value = Data(jobID.utf8)
            ops.append(op)
        }
        try await worker.writeDerived(ops)
    }

    /// Throws if the job was cancelled. Cheap: call it every few thousand rows in long loops.
    public func checkCancelled() throws {
        if cancellation.isSet { throw Self.cancelledError(jobID) }
    }

    static func cancelledError(_ job: String) -> ChorusError {
        ChorusError(.jobFailed, "job \(job) was cancelled")
    }

    /// A broadcast or task the job cannot use (BAD_REQUEST), naming the field.
    public static func invalid(_ field: String, _ why: String) -> ChorusError {
        RequestValidation.invalid(field, why)
    }

    /// Something the task needs has not reached this worker yet (e.g. a broadcast lost in a restart): the
    /// coordinator sends the broadcast again and retries the task.
    public func unavailable(_ what: String) -> ChorusError {
        ChorusError(.unavailable, "job \(jobID): \(what) not received on \(workerName)")
    }
}

extension ShardKeys {
    /// Role byte of the provenance records: key [partition][0x7F][role] → the id of the job that last wrote
    /// that role in the partition.
    public static let provenanceRole: UInt8 = 0x7F

    public static func provenanceKey(partition: UInt32, role: UInt8) -> [UInt8] {
        prefix(partition: partition, role: provenanceRole) + [role]
    }
}
