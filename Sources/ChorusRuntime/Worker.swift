import ChorusAnalytics
import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation
import Logging
import Synchronization
import SwiftProtobuf

/// Options of one worker process.
public struct WorkerOptions: Sendable {
    public var coordinator: String
    public var bind: String
    public var advertise: String?
    public var dataDir: String
    public var name: String?
    public var cores: Int

    public init(coordinator: String, bind: String, advertise: String? = nil, dataDir: String, name: String? = nil,
                cores: Int = ProcessInfo.processInfo.activeProcessorCount) {
        self.coordinator = coordinator; self.bind = bind; self.advertise = advertise
        self.dataDir = dataDir; self.name = name; self.cores = max(1, cores)
    }
}

/// A worker: holds a RocksDB shard of partitions, applies write batches and runs per-partition tasks.
public final class Worker: Sendable {
    public let nodeId: String
    public let name: String
    public let endpoint: String
    let options: WorkerOptions
    let store: Store
    let server: RequestServer
    let coordinator: Peer
    let logger: Logger
    /// Serial queue for write batches: duplicate detection must see earlier batches.
    let writeQueue = BlockingQueue(label: "chorus.worker.writes")
    /// Concurrent queue for tasks and reads (RocksDB reads are thread-safe).
    let computeQueue = BlockingQueue(label: "chorus.worker.compute", concurrent: true)

    struct State {
        var map = Chorus_V1_PartitionMap()
        var nonEmpty = Set<UInt32>()
        var catalogs: [String: FeatureCatalog] = [:]
        var runningTasks = 0
        var registered = false
    }
    let state = Mutex(State())

    public init(options: WorkerOptions, logger: Logger) throws {
        self.options = options
        self.nodeId = try Self.loadOrMintNodeId(dataDir: options.dataDir)
        self.name = options.name ?? "worker-\(nodeId.prefix(8))"
        var log = logger
        log[metadataKey: "node-id"] = "\(nodeId)"
        self.logger = log
        do {
            store = try Store(path: options.dataDir + "/shard")
        } catch {
            throw ChorusError(.storage, "\(error)")
        }
        server = try RequestServer(bind: options.bind)
        let adv = options.advertise ?? server.endpoint.replacingOccurrences(of: "0.0.0.0", with: "127.0.0.1")
        endpoint = adv
        coordinator = try Peer(endpoint: options.coordinator, role: "coordinator", sender: nodeId)
        // Which partitions already hold data (after a restart).
        var nonEmpty = Set<UInt32>()
        var p: UInt32 = 0
        try store.scan(from: ShardKeys.prefix(partition: 0), to: nil) { key, _ in
            let part = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
            nonEmpty.insert(part)
            p = part
            return false
        }
        // Probe the rest partition by partition (cheap seeks).
        while true {
            var next: UInt32?
            try store.scan(from: ShardKeys.prefix(partition: p &+ 1), to: nil) { key, _ in
                next = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
                return false
            }
            guard let n = next, n > p else { break }
            nonEmpty.insert(n)
            p = n
        }
        let known = nonEmpty
        state.withLock { $0.nonEmpty = known }
    }

    static func loadOrMintNodeId(dataDir: String) throws -> String {
        let path = dataDir + "/node-id"
        do {
            try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
            if let s = try? String(contentsOfFile: path, encoding: .utf8) {
                let id = s.trimmingCharacters(in: .whitespacesAndNewlines)
                if !id.isEmpty { return id }
            }
            let id = "w-" + UUID().uuidString.lowercased().prefix(13).replacingOccurrences(of: "-", with: "")
            try id.write(toFile: path, atomically: true, encoding: .utf8)
            return id
        } catch {
            throw ChorusError(.storage, "cannot use data dir \(dataDir): \(error.localizedDescription)")
        }
    }

    /// Serves requests and keeps the registration alive until cancelled.
    public func run() async {
        logger.info("worker listening", metadata: ["endpoint": "\(endpoint)", "name": "\(name)"])
        await withDiscardingTaskGroup { group in
            group.addTask { await self.server.serve(logger: self.logger) { try await self.handle($0) } }
            group.addTask { await self.heartbeatLoop() }
        }
    }

    /// Stops accepting requests. Cancel the task running `run()` and await it, then call `closeStore()`.
    public func shutdown() {
        server.close()
        coordinator.close()
    }

    /// Closes RocksDB. Call only after `run()` has returned, when no request can touch the store.
    public func closeStore() { store.close() }

    // MARK: membership

    func heartbeatLoop() async {
        var backoff: Duration = .milliseconds(200)
        while !Task.isCancelled {
            let registered = state.withLock { $0.registered }
            do {
                if !registered {
                    var r = Chorus_V1_RegisterWorker()
                    r.nodeID = nodeId; r.name = name; r.address = endpoint; r.cores = UInt32(options.cores)
                    guard case let .registerWorker(reply) = try await coordinator.call(.registerWorker(r),
                                                                                        timeout: .seconds(3)) else {
                        throw ChorusError(.internal, "unexpected reply to register")
                    }
                    state.withLock { $0.map = reply.partitionMap; $0.registered = true }
                    logger.info("registered with coordinator",
                                metadata: ["map-version": "\(reply.partitionMap.version)",
                                           "partitions": "\(owned(reply.partitionMap).count)"])
                    backoff = .milliseconds(200)
                } else {
                    var hb = Chorus_V1_Heartbeat()
                    let s = state.withLock { ($0.map.version, $0.nonEmpty, $0.runningTasks) }
                    hb.nodeID = nodeId; hb.mapVersion = s.0; hb.nonemptyPartitions = s.1.sorted()
                    hb.runningTasks = UInt32(s.2)
                    hb.bytesHeld = store.approximateBytes()
                    guard case let .heartbeat(reply) = try await coordinator.call(.heartbeat(hb),
                                                                                   timeout: .seconds(3)) else {
                        throw ChorusError(.internal, "unexpected reply to heartbeat")
                    }
                    if reply.hasPartitionMap {
                        state.withLock { $0.map = reply.partitionMap }
                    }
                }
                try await Task.sleep(for: .milliseconds(500))
            } catch is CancellationError {
                return
            } catch let e as ChorusError where e.code == .notFound {
                logger.warning("coordinator does not know this worker; re-registering")
                state.withLock { $0.registered = false }
            } catch {
                if Task.isCancelled { return }
                logger.warning("coordinator unreachable; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: backoff)
                backoff = min(backoff * 2, .seconds(2))
            }
        }
    }

    func owned(_ map: Chorus_V1_PartitionMap) -> [UInt32] {
        map.assignments.filter { $0.owner == nodeId }.map(\.partition)
    }

    /// Refreshes the partition map from the coordinator (used when a client holds a newer one).
    func refreshMap() async throws {
        guard case let .partitionMap(map) = try await coordinator.call(.partitionMap(.init()), timeout: .seconds(3))
        else { return }
        state.withLock { if map.version > $0.map.version { $0.map = map } }
    }

    func checkOwnership(_ partitions: Set<UInt32>, clientVersion: UInt64) async throws {
        if state.withLock({ $0.map.version }) < clientVersion { try await refreshMap() }
        let (map, mine) = state.withLock { s in (s.map, Set(s.map.assignments.filter { $0.owner == nodeId }.map(\.partition))) }
        for p in partitions where !mine.contains(p) {
            if p >= map.partitionCount {
                throw ChorusError(.usage, "partition \(p) does not exist (partition count \(map.partitionCount))")
            }
            throw ChorusError(.wrongOwner, "worker \(name) does not own partition \(p) (map version \(map.version))")
        }
    }

    // MARK: requests

    func handle(_ req: Chorus_V1_Request) async throws -> ResponseBody {
        switch req.body {
        case let .writeBatch(b): return .writeBatch(try await write(b))
        case let .runTask(t): return .taskResult(try await runTask(t))
        case let .jobBroadcast(b):
            let catalog = FeatureCatalog(b.catalog)
            state.withLock { $0.catalogs[b.jobID] = catalog }
            return .ack(.init())
        case let .jobRelease(r):
            _ = state.withLock { $0.catalogs.removeValue(forKey: r.id) }
            return .ack(.init())
        case let .profileGet(g): return .profile(try await profileGet(g))
        case let .profileScan(s): return .profileScan(try await profileScan(s))
        case .partitionMap:
            return .partitionMap(state.withLock { $0.map })
        default:
            throw ChorusError(.usage, "a worker does not serve this request; send it to the coordinator")
        }
    }

    func write(_ batch: Chorus_V1_WriteBatch) async throws -> Chorus_V1_WriteReply {
        // Validate everything before writing anything: the batch is all-or-nothing.
        for put in batch.puts {
            guard (1...6).contains(put.role.rawValue) else {
                throw ChorusError(.usage, "put with unknown role \(put.role.rawValue)")
            }
            guard !put.keyID.isEmpty, put.keyID.count <= 1024 else {
                throw ChorusError(.usage, "put with an empty or oversized key id")
            }
            let ok: Bool
            switch put.role {
            case .user: ok = (try? Chorus_V1_User(serializedBytes: put.value)) != nil
            case .content: ok = (try? Chorus_V1_Content(serializedBytes: put.value)) != nil
            case .interactionByUser, .interactionByContent:
                ok = (try? Chorus_V1_Interaction(serializedBytes: put.value)) != nil
            default: ok = (try? Chorus_V1_Follow(serializedBytes: put.value)) != nil
            }
            if !ok { throw ChorusError(.usage, "put value does not decode as its role's record type") }
        }
        let parts = Set(batch.puts.map(\.partition))
        try await checkOwnership(parts, clientVersion: batch.mapVersion)
        let fresh = parts.subtracting(state.withLock { $0.nonEmpty })
        if !fresh.isEmpty {
            var seal = Chorus_V1_SealPartitions()
            seal.nodeID = nodeId
            seal.partitions = fresh.sorted()
            _ = try await coordinator.call(.sealPartitions(seal), timeout: .seconds(5))
            state.withLock { $0.nonEmpty.formUnion(fresh) }
        }
        let store = self.store
        let reply = try await writeQueue.run { () throws -> Chorus_V1_WriteReply in
            var reply = Chorus_V1_WriteReply()
            var rows: [(key: [UInt8], value: [UInt8])] = []
            rows.reserveCapacity(batch.puts.count)
            var seen: [[UInt8]: [UInt8]] = [:]  // counted keys written earlier in this same batch
            for put in batch.puts {
                let key = ShardKeys.key(partition: put.partition, role: ShardKeys.role(put.role), id: [UInt8](put.keyID))
                let value = [UInt8](put.value)
                // Only the counted copy needs the duplicate check; the other copy of a record is
                // written as is (rewriting identical bytes changes nothing).
                if put.counted {
                    if try (seen[key] ?? store.get(key)) == value {
                        reply.duplicates += 1
                        continue
                    }
                    seen[key] = value
                    reply.stored += 1
                }
                rows.append((key, value))
            }
            // Sorted inserts are cheaper for the memtable skip list. Equal keys keep their order (last wins).
            let order = rows.indices.sorted { rows[$0].key.lexicographicallyPrecedes(rows[$1].key)
                || (rows[$0].key == rows[$1].key && $0 < $1) }
            var wb = WriteBatch()
            for i in order { wb.put(rows[i].key, rows[i].value) }
            reply.written = UInt32(rows.count)
            try store.write(wb)
            return reply
        }
        return reply
    }

    func profileGet(_ g: Chorus_V1_ProfileGet) async throws -> Chorus_V1_ProfileReply {
        try await checkOwnership([g.partition], clientVersion: 0)
        let store = self.store
        return try await computeQueue.run {
            var r = Chorus_V1_ProfileReply()
            let id = Array(g.userID.utf8)
            if let p = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.Derived.profile.rawValue, id: id)) {
                r.found = true
                r.profileJson = String(decoding: p, as: UTF8.self)
            }
            if let u = try store.get(ShardKeys.key(partition: g.partition, role: ShardKeys.role(.user), id: id)),
               let rec = try? Chorus_V1_User(serializedBytes: u) {
                r.userJson = (try? rec.jsonString()) ?? ""
            }
            return r
        }
    }

    func profileScan(_ s: Chorus_V1_ProfileScan) async throws -> Chorus_V1_ProfileScanReply {
        try await checkOwnership([s.partition], clientVersion: 0)
        let store = self.store
        let limit = Int(s.limit == 0 ? 1000 : min(s.limit, 10000))
        return try await computeQueue.run {
            var r = Chorus_V1_ProfileScanReply()
            let prefix = ShardKeys.prefix(partition: s.partition, role: ShardKeys.Derived.profile.rawValue)
            let from = s.after.isEmpty ? prefix : prefix + Array(s.after.utf8) + [0]
            var last = ""
            try store.scan(from: from, to: Store.prefixEnd(prefix)) { key, value in
                r.profilesJson.append(String(decoding: value, as: UTF8.self))
                last = String(decoding: key.dropFirst(5), as: UTF8.self)
                return r.profilesJson.count < limit
            }
            r.nextAfter = r.profilesJson.count < limit ? "" : last
            return r
        }
    }
}

extension FeatureCatalog {
    init(_ c: Chorus_V1_Catalog) {
        self.init()
        users.reserveCapacity(c.users.count)
        for u in c.users { users[u.id] = UserInfo(channel: u.channel, country: u.country) }
        contents.reserveCapacity(c.contents.count)
        for x in c.contents { contents[x.id] = ContentInfo(topics: x.topics, hashtags: x.hashtags) }
    }
}
