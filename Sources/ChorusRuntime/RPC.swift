import ChorusModel
import ChorusTransport
import ChorusWire
import Foundation
import Logging
import Synchronization
import SwiftProtobuf

typealias RequestBody = Chorus_V1_Request.OneOf_Body
typealias ResponseBody = Chorus_V1_Response.OneOf_Body

/// Reads the correlation id of a serialized Response without decoding the rest (field 1, varint).
@Sendable func responseCorrelationId(_ bytes: [UInt8]) -> UInt64? {
    (try? Chorus_V1_Response(serializedBytes: bytes))?.correlationID
}

private let correlationCounter = Atomic<UInt64>(1)

/// A typed request/reply client to one Chorus process (coordinator or worker).
public final class Peer: Sendable {
    public let endpoint: String
    let role: String
    let sender: String
    private let client: DealerClient

    /// `role` names the peer in error messages ("coordinator", "worker w-1"). With a secure `security`, the
    /// connection is CURVE, to the server holding `serverKey` (the coordinator's key when nil and `role` is
    /// "coordinator").
    public init(endpoint: String, role: String, sender: String = "client", security: NodeSecurity,
                serverKey: String? = nil) throws {
        self.endpoint = endpoint
        self.role = role
        self.sender = sender
        let curve = try security.curveClient(serverKey: serverKey ?? (role == "coordinator" ? security.coordinatorKey : nil),
                                             peerRole: role, endpoint: endpoint)
        do {
            client = try DealerClient(connect: endpoint, curve: curve, correlate: responseCorrelationId)
        } catch {
            throw ChorusError(.usage, "bad \(role) address '\(endpoint)': \(error)",
                              hint: "use a ZeroMQ endpoint such as tcp://127.0.0.1:7100")
        }
    }

    func call(_ body: RequestBody, timeout: Duration) async throws -> ResponseBody {
        var req = Chorus_V1_Request()
        req.protocolVersion = Wire.protocolVersion
        req.correlationID = correlationCounter.wrappingAdd(1, ordering: .relaxed).oldValue
        req.sender = sender
        req.body = body
        let bytes: [UInt8] = try req.serializedBytes()
        let reply: [UInt8]
        do {
            reply = try await client.request(bytes, correlationId: req.correlationID, timeout: timeout)
        } catch let e as TransportError {
            let hint = role == "coordinator"
                ? "is `chorus coordinator` running there? set --coordinator or CHORUS_COORDINATOR"
                : "is the worker up? see `chorus node list`"
            switch e {
            case let .timeout(_, ms):
                throw ChorusError(.unreachable, "no reply from the \(role) at \(endpoint) within \(ms / 1000 > 0 ? "\(ms / 1000) s" : "\(ms) ms")",
                                  hint: hint)
            case .connect, .disconnected:
                throw ChorusError(.unreachable, "\(role) at \(endpoint): \(e)", hint: hint)
            case let .handshake(_, reason):
                throw ChorusError(.permissionDenied, "the \(role) at \(endpoint) did not let this client in: \(reason)",
                                  hint: "check that this key (--keys/CHORUS_KEYS, --key-name/CHORUS_KEY_NAME) is in the cluster's "
                                    + "allow-list (then `chorus keys reload`), and that coordinator.key is the cluster's")
            default:
                throw ChorusError(.unreachable, "\(role) at \(endpoint): \(e)")
            }
        }
        let resp = try Chorus_V1_Response(serializedBytes: reply)
        guard let rb = resp.body else { throw ChorusError(.internal, "empty reply from the \(role) at \(endpoint)") }
        if case let .error(err) = rb { throw Self.error(err, role: role) }
        return rb
    }

    static func error(_ e: Chorus_V1_ErrorReply, role: String) -> ChorusError {
        // A server that names the exact kind: its code, message and hint come through as they were.
        if let kind = ChorusError.Code(rawValue: e.kind), kind != .internal {
            let message = kind == .usage || kind == .invalidInput ? "the \(role) rejected the request: \(e.message)" : e.message
            return ChorusError(kind, message, hint: e.hint.isEmpty ? defaultHint(e.code) : e.hint)
        }
        return legacyError(e, role: role)
    }

    static func defaultHint(_ code: Chorus_V1_ErrorCode) -> String? {
        switch code {
        case .wrongOwner, .fenced: return "refresh the partition map and retry"
        case .unavailable: return "retry when workers are up"
        case .unknownNode: return "re-register"
        default: return nil
        }
    }

    /// Errors of servers from before `kind` and `hint` existed (the hint was inside the message).
    static func legacyError(_ e: Chorus_V1_ErrorReply, role: String) -> ChorusError {
        switch e.code {
        case .badRequest: return ChorusError(.usage, "the \(role) rejected the request: \(e.message)")
        case .notFound: return ChorusError(.notFound, e.message)
        case .wrongOwner: return ChorusError(.wrongOwner, e.message, hint: "refresh the partition map and retry")
        case .unavailable: return ChorusError(.unavailable, e.message, hint: "retry when workers are up")
        case .cancelled: return ChorusError(.jobFailed, e.message)
        case .unknownNode: return ChorusError(.notFound, e.message, hint: "re-register")
        case .fenced: return ChorusError(.fenced, e.message, hint: "refresh the partition map and retry")
        case .permissionDenied: return ChorusError(.permissionDenied, e.message)
        default: return ChorusError(.internal, "\(role) error: \(e.message)")
        }
    }

    public func close() { client.close() }
}

extension ChorusError {
    /// The wire form of an error, for replies.
    var wire: Chorus_V1_ErrorReply {
        var e = Chorus_V1_ErrorReply()
        e.message = message
        e.hint = hint ?? ""
        e.kind = code.rawValue
        switch code {
        case .usage, .invalidInput: e.code = .badRequest
        case .notFound: e.code = .notFound
        case .wrongOwner: e.code = .wrongOwner
        case .fenced: e.code = .fenced
        case .unavailable, .unreachable: e.code = .unavailable
        case .jobFailed: e.code = .cancelled
        case .permissionDenied: e.code = .permissionDenied
        default: e.code = .internal
        }
        return e
    }
}

/// Serves requests from a ROUTER socket: decodes each frame, validates it (`RequestValidation.check`), runs `handler`
/// in its own Task, and replies. Garbage frames and invalid requests get a BAD_REQUEST reply (or are dropped by the
/// transport) and never crash the process. Every BAD_REQUEST reply is counted (`rejected`, reported in heartbeats,
/// `node list` and `cluster status`) and logged at most once per connection per minute.
public final class RequestServer: Sendable {
    public let endpoint: String
    private let server: RouterServer
    private let rejections = RejectionLog()

    /// Whether requests are checked against the sender's role (a CURVE server); a plaintext server serves all.
    let secure: Bool

    /// With a secure `security`, the socket is a CURVE server with this process's key, letting in the keys of
    /// `access` only.
    public init(bind: String, security: NodeSecurity, access: AccessControl?) throws {
        var curve: CurveServer?
        if let identity = security.identity {
            guard let secret = identity.secretKey.flatMap(z85Key), let access else {
                throw ChorusError(.usage, "a secure server needs its secret key and an allow-list")
            }
            curve = CurveServer(secretKey: secret, authorize: access.authorizer)
        }
        do {
            server = try RouterServer(bind: bind, curve: curve)
        } catch {
            throw ChorusError(.usage, "\(error)", hint: "is the port already in use? pick another --bind")
        }
        secure = curve != nil
        endpoint = server.endpoint
    }

    /// Requests answered BAD_REQUEST since start (undecodable, failing validation, or refused as malformed).
    public var rejected: UInt64 { rejections.total }

    /// Live connections from peers to this server.
    public var connections: Int { server.connections }

    /// The request type as metrics name it: the body's field name (`write_batch`, `run_task`), "invalid" when the
    /// request did not decode or has no body.
    static func typeName(_ body: RequestBody?) -> String {
        guard let body, let label = Mirror(reflecting: body).children.first?.label else { return "invalid" }
        return snakeCase(label)
    }

    /// A Swift case name as the .proto file spells it: `writeBatch` → `write_batch`.
    static func snakeCase(_ name: String) -> String {
        var out = ""
        for c in name {
            if c.isUppercase { out += "_" + c.lowercased() } else { out.append(c) }
        }
        return out
    }

    /// Runs until the server is closed. `handler` returns the reply body or throws a ChorusError. Each request is
    /// counted and timed in `metrics` by type (`chorus_requests_total`, `chorus_request_duration_seconds`).
    /// On a CURVE server, a request outside the role of its connection's key is refused with PERMISSION_DENIED,
    /// counted (`chorus_requests_total{outcome="permission_denied"}`) and logged; `readOnlyKinds` are the job kinds
    /// an analyst may submit.
    /// `observe` sees every decoded request with its principal and reply (an error reply included), before the
    /// reply is sent: the coordinator's audit log.
    func serve(logger: Logger, metrics: NodeMetrics, readOnlyKinds: Set<String> = [],
               observe: (@Sendable (Chorus_V1_Request, Principal?, ResponseBody?) async -> Void)? = nil,
               _ handler: @escaping @Sendable (Chorus_V1_Request) async throws -> ResponseBody) async {
        let server = self.server
        let rejections = self.rejections
        let secure = self.secure
        await withDiscardingTaskGroup { group in
            for await msg in server.messages {
                group.addTask {
                    let start = ContinuousClock.now
                    var type = "invalid"
                    var resp = Chorus_V1_Response()
                    var sender = ""
                    var decoded: Chorus_V1_Request?
                    defer {
                        var outcome = "ok"
                        if case let .error(e)? = resp.body { outcome = Self.errorName(e.code) }
                        metrics.counter("chorus_requests_total", [("type", type), ("outcome", outcome)]).increment()
                        metrics.timer("chorus_request_duration_seconds", [("type", type)])
                            .recordNanoseconds((ContinuousClock.now - start).nanoseconds)
                    }
                    do {
                        let req: Chorus_V1_Request
                        do {
                            req = try Chorus_V1_Request(serializedBytes: msg.payload)
                        } catch {
                            throw ChorusError(.invalidInput, "undecodable request (\(msg.payload.count) bytes): not a chorus.v1.Request")
                        }
                        resp.correlationID = req.correlationID
                        decoded = req
                        sender = String(req.sender.prefix(64))
                        type = Self.typeName(req.body)
                        guard req.body != nil else {
                            throw ChorusError(.invalidInput, "request has no body (unknown request type or protocol "
                                              + "version \(req.protocolVersion))")
                        }
                        // The role first: a sender without the right role learns nothing about the request's checks.
                        if secure { try Self.authorize(req, userId: msg.userId, readOnlyKinds: readOnlyKinds, logger: logger) }
                        try RequestValidation.check(req)
                        resp.body = try await handler(req)
                    } catch let e as ChorusError {
                        resp.body = .error(e.wire)
                    } catch {
                        logger.error("request failed", metadata: ["error": "\(error)"])
                        resp.body = .error(ChorusError(.internal, "\(error)").wire)
                    }
                    if case let .error(e)? = resp.body, e.code == .badRequest {
                        rejections.note(peer: msg.peer, sender: sender, message: e.message, logger: logger)
                    }
                    if let observe, let decoded { await observe(decoded, Principal(userId: msg.userId), resp.body) }
                    if let bytes: [UInt8] = try? resp.serializedBytes() { server.reply(to: msg.peer, bytes) }
                }
            }
        }
    }

    public func close() { server.close() }

    /// Refuses a request outside the role its connection was let in with (the ZAP User-Id).
    static func authorize(_ req: Chorus_V1_Request, userId: String?, readOnlyKinds: Set<String>, logger: Logger) throws {
        let rule = AccessPolicy.rule(req, readOnlyKinds: readOnlyKinds)
        let principal = Principal(userId: userId)
        if let principal, AccessPolicy.allows(principal.role, rule) { return }
        let type = typeName(req.body)
        logger.warning("permission denied", metadata: [
            "principal": "\(principal?.description ?? "unknown")", "request": "\(type)", "needs": "\(rule.rawValue)"])
        throw ChorusError(.permissionDenied,
                          "permission denied: \(principal.map { "key '\($0.name)' has role \($0.role.rawValue), which" } ?? "this connection") "
                          + "may not send \(type) (it needs \(AccessPolicy.rolesAllowed(rule)))",
                          hint: "use a key with one of those roles (--key-name), or ask an admin for one")
    }

    /// An error code as a metric label: `bad_request`, `not_found`, ...
    static func errorName(_ code: Chorus_V1_ErrorCode) -> String {
        let name = snakeCase("\(code)")  // from the Swift case name, e.g. badRequest
        return name.isEmpty ? "error" : name
    }
}

/// Counts rejected requests and logs them once per connection (ZeroMQ routing id) per minute, with how many were
/// refused since the last line, so a flood of invalid requests costs one log line a minute per sender.
final class RejectionLog: Sendable {
    private struct State {
        var total: UInt64 = 0
        /// Per connection: when its last line was logged and the rejections since.
        var byPeer: [[UInt8]: (loggedAt: ContinuousClock.Instant, since: Int)] = [:]
    }
    private let state = Mutex(State())
    static let interval: Duration = .seconds(60)
    /// Connections remembered at most (a peer that reconnects gets a new routing id).
    static let maxPeers = 4096

    var total: UInt64 { state.withLock { $0.total } }

    func note(peer: [UInt8], sender: String, message: String, logger: Logger) {
        let now = ContinuousClock.now
        let suppressed: Int? = state.withLock { s in
            s.total += 1
            if let e = s.byPeer[peer], now - e.loggedAt < Self.interval {
                s.byPeer[peer] = (e.loggedAt, e.since + 1)
                return nil
            }
            if s.byPeer.count >= Self.maxPeers {
                s.byPeer = s.byPeer.filter { now - $0.value.loggedAt < Self.interval }
                if s.byPeer.count >= Self.maxPeers { s.byPeer.removeAll() }
            }
            let since = s.byPeer[peer]?.since ?? 0
            s.byPeer[peer] = (now, 0)
            return since
        }
        guard let suppressed else { return }
        // The sender and parts of the message are the peer's bytes: no control or bidi characters reach the log.
        func clean(_ s: Substring) -> String {
            String(String.UnicodeScalarView(s.unicodeScalars.map { u in
                let c = u.properties.generalCategory
                return c == .control || c == .format || c == .lineSeparator || c == .paragraphSeparator ? "?" : u
            }))
        }
        logger.warning("rejected an invalid request", metadata: [
            "sender": "\(sender.isEmpty ? "?" : clean(sender[...]))",
            "connection": "\(peer.hexString)",
            "error": "\(clean(message.prefix(300)))",
            "rejected-since-last-log": "\(suppressed)"])
    }
}

func nowMs() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
