import ChorusModel
import ChorusTransport
import ChorusWire
import Foundation
import Logging
import Synchronization

/// How one Chorus process secures its sockets: CurveZMQ with a key pair and an allow-list, or plaintext when it was
/// started with `--insecure`.
///
/// A keys directory (`--keys DIR`, `CHORUS_KEYS`, or the config file's `keys`) holds:
/// - `NAME.key_secret`: this process's own certificate, chosen by `--key-name` (servers: `coordinator` for the
///   coordinator, `worker` for a worker; clients: `CHORUS_KEY_NAME`, else the only secret certificate there);
/// - `coordinator.key`: the coordinator's public certificate, which clients and workers dial;
/// - `*.key`: the allow-list a server lets in, each with its principal's name and role.
///
/// A worker's server key is its own certificate: it registers the public key, and clients find it in the map.
public struct NodeSecurity: Sendable {
    /// This process's certificate, with its secret key; nil in plaintext mode.
    public let identity: CurveKeys.Certificate?
    /// The coordinator's public key (Z85).
    public let coordinatorKey: String?
    /// The allow-list a server reads (a directory or one file); reloaded by `reloadAllowList`.
    public let allowListPath: String?

    public static let insecure = NodeSecurity(identity: nil, coordinatorKey: nil, allowListPath: nil)

    public init(identity: CurveKeys.Certificate?, coordinatorKey: String?, allowListPath: String?) {
        self.identity = identity
        self.coordinatorKey = coordinatorKey
        self.allowListPath = allowListPath
    }

    public var isSecure: Bool { identity != nil }
    /// This process's public key, "" in plaintext mode (what a worker registers).
    public var publicKey: String { identity?.publicKey ?? "" }

    /// Reads a keys directory. `name` picks the secret certificate; nil picks the only one there.
    public static func load(keysDir dir: String, name: String?) throws -> NodeSecurity {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: dir, isDirectory: &isDir), isDir.boolValue else {
            throw ChorusError(.notFound, "keys directory not found: \(dir)",
                              hint: "create one with `chorus keys init --out \(dir)`, or start with --insecure for a plaintext cluster")
        }
        let secrets = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { $0.hasSuffix(".key_secret") && !$0.hasPrefix(".") }.sorted()
        let chosen: String
        if let name, !name.isEmpty {
            chosen = name + ".key_secret"
            guard secrets.contains(chosen) else {
                throw ChorusError(.notFound, "no key named '\(name)' in \(dir) (have: \(secrets.map { String($0.dropLast(11)) }.joined(separator: ", ")))",
                                  hint: "generate it with `chorus keys generate --name \(name) --role ROLE --out \(dir)`")
            }
        } else if secrets.count == 1 {
            chosen = secrets[0]
        } else {
            throw ChorusError(.usage, secrets.isEmpty ? "no secret key (*.key_secret) in \(dir)"
                              : "\(dir) holds several secret keys (\(secrets.map { String($0.dropLast(11)) }.joined(separator: ", ")))",
                              hint: "choose one with --key-name NAME or CHORUS_KEY_NAME")
        }
        let path = (dir as NSString).appendingPathComponent(chosen)
        try Self.checkPrivate(path)
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ChorusError(.storage, "cannot read \(path)")
        }
        let identity = try CurveKeys.Certificate.parse(text, source: path)
        guard identity.secretKey != nil else {
            throw ChorusError(.invalidInput, "\(path) holds no secret-key", hint: "use the .key_secret file `chorus keys generate` wrote")
        }
        var coordinatorKey: String?
        let coordPath = (dir as NSString).appendingPathComponent("coordinator.key")
        if let t = try? String(contentsOfFile: coordPath, encoding: .utf8) {
            coordinatorKey = try CurveKeys.Certificate.parse(t, source: coordPath).publicKey
        } else if identity.name == "coordinator" {
            coordinatorKey = identity.publicKey
        }
        return NodeSecurity(identity: identity, coordinatorKey: coordinatorKey, allowListPath: dir)
    }

    /// A secret key that other users can read or change is refused. Group read is allowed: Kubernetes mounts
    /// secrets group-readable by the pod's fsGroup.
    static func checkPrivate(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else { throw ChorusError(.storage, "cannot stat \(path)") }
        if st.st_mode & 0o027 != 0 {
            throw ChorusError(.usage, "\(path) is readable by other users (mode \(String(st.st_mode & 0o777, radix: 8)))",
                              hint: "chmod 600 \(path)")
        }
    }

    /// The socket settings to dial a server holding `serverKey` (Z85); nil in plaintext mode.
    func curveClient(serverKey: String?, peerRole: String, endpoint: String) throws -> CurveClient? {
        guard let identity, let secret = identity.secretKey else { return nil }
        guard let serverKey, !serverKey.isEmpty else {
            throw ChorusError(.usage, "no public key known for the \(peerRole) at \(endpoint)",
                              hint: peerRole == "coordinator"
                                ? "put the coordinator's public certificate in the keys directory as coordinator.key"
                                : "the worker registered without a key: is it running with --insecure?")
        }
        guard let server = z85Key(serverKey), let pub = z85Key(identity.publicKey), let sec = z85Key(secret) else {
            throw ChorusError(.invalidInput, "a CURVE key is not 40 Z85 characters (the \(peerRole)'s, or \(identity.name)'s)")
        }
        return CurveClient(serverKey: server, publicKey: pub, secretKey: sec)
    }
}

/// A server's allow-list, reloadable while it runs (SIGHUP, `chorus keys reload`). A reload changes who may open
/// new connections; connections already let in keep the role they were let in with.
public final class AccessControl: Sendable {
    public let path: String
    private let list: Mutex<CurveKeys.AllowList>

    public init(path: String) throws {
        self.path = path
        list = Mutex(try CurveKeys.AllowList.load(path))
    }

    /// Reads the allow-list again. On an error the old one stays in force.
    @discardableResult
    public func reload() throws -> Int {
        let fresh = try CurveKeys.AllowList.load(path)
        list.withLock { $0 = fresh }
        return fresh.byKey.count
    }

    public var count: Int { list.withLock { $0.byKey.count } }

    /// The ZAP User-Id of a known key: "ROLE/NAME".
    func userId(for key: [UInt8]) -> String? {
        let text = z85Text(key)
        return list.withLock { $0.byKey[text] }.map { "\($0.role.rawValue)/\($0.name)" }
    }

    var authorizer: CurveAuthorizer { { [self] key in self.userId(for: key) } }
}

/// Logs the handshakes the process's ZAP handler refuses: once per client key per minute (a refused client
/// re-dials every few seconds), with the number refused since.
enum HandshakeDenials {
    private static let seen = Mutex<[String: (at: ContinuousClock.Instant, since: Int)]>([:])

    /// Installs the logger (the last server made in the process logs for all of them).
    static func log(to logger: Logger) {
        ZAPHandler.shared.setDenialHandler { _, key, reason in
            let now = ContinuousClock.now
            let since: Int? = seen.withLock { d in
                if let e = d[key], now - e.at < .seconds(60) {
                    d[key] = (e.at, e.since + 1)
                    return nil
                }
                if d.count > 4096 { d.removeAll() }
                let n = d[key]?.since ?? 0
                d[key] = (now, 0)
                return n
            }
            guard let since else { return }
            logger.warning("refused a connection", metadata: [
                "client-key": "\(key.isEmpty ? "none" : key)", "reason": "\(reason)", "refused-since-last-log": "\(since)"])
        }
    }
}

/// Who sent a request, from the ZAP User-Id its connection was let in with ("ROLE/NAME").
public struct Principal: Sendable, Equatable, CustomStringConvertible {
    public let role: CurveKeys.Role
    public let name: String

    init?(userId: String?) {
        guard let userId, let slash = userId.firstIndex(of: "/"),
              let role = CurveKeys.Role(rawValue: String(userId[..<slash])) else { return nil }
        self.role = role
        self.name = String(userId[userId.index(after: slash)...])
    }

    public var description: String { "\(name) (\(role.rawValue))" }
}

/// Which role may send which request (docs/security.md has the table). Checked by every server on every request,
/// from the principal its connection's key belongs to, never from a field of the request.
public enum AccessPolicy {
    public enum Rule: String, Sendable, CaseIterable {
        /// cluster-internal traffic: worker <-> coordinator, worker <-> worker
        case `internal`
        /// the partition map and cluster status: every role
        case map
        /// profiles, results, reports, models, documents: analyst and up
        case read
        /// a job whose kind writes nothing back to the shards: analyst and up
        case readOnlyJob
        /// jobs, pipelines, campaigns, models, approvals: operator and admin
        case operate
        /// record writes: ingest and admin
        case ingest
        /// drain or undrain a node: admin, and a worker key (a worker drains itself on stop, undrains at start)
        case nodeLifecycle
        /// remove, rebalance, keys, the audit log: admin
        case admin
    }

    /// The rule a request falls under. `readOnlyKinds` are the job kinds an analyst may submit.
    public static func rule(_ req: Chorus_V1_Request, readOnlyKinds: Set<String>) -> Rule {
        guard let body = req.body else { return .internal }
        switch body {
        case .registerWorker, .heartbeat, .runTask, .jobBroadcast, .jobRelease, .sealPartitions, .replicaWrite,
             .copyPartition, .partitionChunk, .mapPush, .userHistory, .partitionFile, .fileChunk, .replicaBatch:
            return .internal
        case .clusterStatus, .partitionMap:
            return .map
        case .jobStatus, .jobList, .profileGet, .profileScan, .recommend, .similar, .modelList, .modelGet,
             .sentimentQuery, .pipelineStatus, .pipelineList, .jobResult, .documentGet, .documentList:
            return .read
        case let .documentEvent(e):
            // A reader notes its own exports and reports in a document's history; any other entry is an operator's.
            return e.action == "export" || e.action == "report" ? .read : .operate
        case let .submitJob(s):
            return readOnlyKinds.contains(s.kind) ? .readOnlyJob : .operate
        case .jobCancel, .submitPipeline, .modelPut, .documentPut, .documentApprove:
            return .operate
        case .writeBatch:
            return .ingest
        case let .nodeAdmin(a):
            // A worker drains itself when it stops (the systemd ExecStop, the Kubernetes preStop hook) and
            // undrains itself at start (--undrain-on-start), with its own key.
            // A forced drain (one that leaves fewer than R copies) stays an admin's.
            return a.action == Chorus_V1_NodeAction.undrain || (a.action == .drain && !a.force) ? .nodeLifecycle : .admin
        case let .keysReload(k):
            // The coordinator forwards an admin's reload to the workers with its own (worker) key.
            return k.forwarded ? .internal : .admin
        case .rebalance, .audit:
            return .admin
        }
    }

    public static func allows(_ role: CurveKeys.Role, _ rule: Rule) -> Bool {
        switch (role, rule) {
        case (_, .map): return true
        case (.worker, .internal), (.worker, .nodeLifecycle): return true
        case (.worker, _): return false
        case (_, .internal): return false
        case (.admin, _): return true
        case (.operator, .read), (.operator, .readOnlyJob), (.operator, .operate): return true
        case (.analyst, .read), (.analyst, .readOnlyJob): return true
        case (.ingest, .ingest): return true
        default: return false
        }
    }

    /// The roles a rule lets through, for messages: "role admin or operator".
    static func rolesAllowed(_ rule: Rule) -> String {
        let roles = CurveKeys.Role.allCases.filter { allows($0, rule) }.map(\.rawValue)
        return "role " + roles.joined(separator: " or ")
    }
}

/// The cluster's pseudonym secret file (`chorus privacy secret`): 32 random bytes as 64 hex digits, mode 0600. Only
/// ingest clients and analysts who map ids hold it; it never reaches a worker.
public enum PseudonymSecret {
    public static func load(_ path: String) throws -> Pseudonymizer {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ChorusError(.notFound, "cannot read the pseudonym secret \(path)", hint: "make one with `chorus privacy secret --out FILE`")
        }
        try NodeSecurity.checkPrivate(path)
        let hex = Array(text.trimmingCharacters(in: .whitespacesAndNewlines).utf8)
        var bytes: [UInt8] = []
        var i = 0
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        while i + 1 < hex.count, let hi = nibble(hex[i]), let lo = nibble(hex[i + 1]) {
            bytes.append(hi << 4 | lo)
            i += 2
        }
        guard i == hex.count, let p = Pseudonymizer(secret: bytes), bytes.count >= 32 else {
            throw ChorusError(.invalidInput, "\(path) is not a pseudonym secret (64 hex digits)")
        }
        return p
    }

    /// Writes a new secret (refusing to overwrite one) and returns its pseudonymizer.
    public static func create(_ path: String) throws -> Pseudonymizer {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) }
        if FileManager.default.fileExists(atPath: path) {
            throw ChorusError(.conflict, "\(path) exists already", hint: "a secret is never overwritten: losing it loses the mapping")
        }
        let text = bytes.hexString + "\n"
        try DurableFile.write(Array(text.utf8), to: path, mode: 0o600, exclusive: true)
        return Pseudonymizer(secret: bytes)!
    }
}
