import CZeroMQ
import Foundation
import Synchronization

/// Decodes a 40-character Z85 CurveZMQ key to its 32 bytes (nil when it is not one).
public func z85Key(_ text: String) -> [UInt8]? {
    guard text.utf8.count == 40 else { return nil }
    var out = [UInt8](repeating: 0, count: 32)
    guard zmq_z85_decode(&out, text) != nil else { return nil }
    return out
}

/// Encodes 32 key bytes as Z85 text.
public func z85Text(_ key: [UInt8]) -> String {
    var buf = [CChar](repeating: 0, count: 41)
    _ = key.withUnsafeBufferPointer { zmq_z85_encode(&buf, $0.baseAddress, 32) }
    return String(cString: buf)
}

/// What a server decides about a client key during the CURVE handshake: the ZAP User-Id to let it in with, or nil
/// to refuse it. Called on the ZAP handler's own thread; must not block.
public typealias CurveAuthorizer = @Sendable (_ clientKey: [UInt8]) -> String?

/// A server socket's CURVE settings: its key pair and who may connect.
public struct CurveServer: Sendable {
    public let secretKey: [UInt8]
    public let authorize: CurveAuthorizer

    public init(secretKey: [UInt8], authorize: @escaping CurveAuthorizer) {
        self.secretKey = secretKey
        self.authorize = authorize
    }
}

/// A client socket's CURVE settings: the server's public key it expects, and its own key pair.
public struct CurveClient: Sendable {
    public let serverKey: [UInt8]
    public let publicKey: [UInt8]
    public let secretKey: [UInt8]

    public init(serverKey: [UInt8], publicKey: [UInt8], secretKey: [UInt8]) {
        self.serverKey = serverKey
        self.publicKey = publicKey
        self.secretKey = secretKey
    }
}

extension RawSocket {
    func setBytes(_ option: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { zmq_setsockopt(raw, option, $0.baseAddress, $0.count) } == 0
    }

    func setString(_ option: Int32, _ s: String) -> Bool {
        let bytes = Array(s.utf8)
        return bytes.withUnsafeBytes { zmq_setsockopt(raw, option, $0.baseAddress, $0.count) } == 0
    }

    /// Makes this socket a CURVE client of a server with `keys.serverKey`.
    func configure(client keys: CurveClient) throws(TransportError) {
        guard setBytes(ZMQ_CURVE_SERVERKEY, keys.serverKey), setBytes(ZMQ_CURVE_PUBLICKEY, keys.publicKey),
              setBytes(ZMQ_CURVE_SECRETKEY, keys.secretKey) else {
            throw .system("CURVE client keys rejected by libzmq: \(zmqErrorString()) (is libzmq built with libsodium?)")
        }
    }
}

/// The process's ZAP handler (ZeroMQ RFC 27) at `inproc://zeromq.zap.01`, on the shared context, with its own OS
/// thread. It is bound before any CURVE server socket binds (`RouterServer` calls `install` first) and it denies by
/// default: a request for an unknown ZAP domain, for any mechanism but CURVE, or for a key the domain's authorizer
/// does not know, is answered 400. Without a handler libzmq would let in any client that knows the server's key.
///
/// Each CURVE server socket has a domain of its own, so several servers in one process (`chorus local`) each
/// apply their own allow-list.
/// SAFETY: the ROUTER socket is used only by the handler thread (a ROUTER, not a REP: a reply that cannot be sent
/// must not leave the socket stuck in its send state); the domain table is behind a mutex.
public final class ZAPHandler: @unchecked Sendable {
    public static let shared = ZAPHandler()
    public static let endpoint = "inproc://zeromq.zap.01"

    private struct State {
        var installed = false
        var domains: [String: CurveAuthorizer] = [:]
        var next = 0
        var allowed = 0
        var denied = 0
    }
    private let state = Mutex(State())
    /// Called with (domain, client key Z85, reason) for every refused handshake, on the handler thread.
    private let onDeny = Mutex<(@Sendable (String, String, String) -> Void)?>(nil)

    private init() {}

    /// Binds the handler once per process (under the lock, so two servers made at once do not race). Throws
    /// when it cannot: a CURVE server must then not bind.
    public func install() throws(TransportError) {
        let result: Result<SocketBox?, TransportError> = state.withLock { s in
            if s.installed { return .success(nil) }
            let socket: RawSocket
            do throws(TransportError) { socket = try RawSocket(type: ZMQ_ROUTER) } catch { return .failure(error) }
            if zmq_bind(socket.raw, Self.endpoint) != 0 {
                let reason = zmqErrorString()
                socket.close()
                return .failure(.bind(endpoint: Self.endpoint, reason: "the ZAP handler cannot bind: \(reason)"))
            }
            s.installed = true
            return .success(SocketBox(socket))
        }
        guard let box = try result.get() else { return }
        startDedicatedThread(name: "zmq-zap") { [self] in self.run(box.socket) }
    }

    /// Registers a server's authorizer under a new, unique ZAP domain, which the server socket sets.
    func register(_ authorize: @escaping CurveAuthorizer) -> String {
        state.withLock { s in
            s.next += 1
            let domain = "chorus-\(s.next)"
            s.domains[domain] = authorize
            return domain
        }
    }

    func unregister(_ domain: String) {
        _ = state.withLock { $0.domains.removeValue(forKey: domain) }
    }

    /// Sets what to do with each refusal (the servers log it).
    public func setDenialHandler(_ handler: @escaping @Sendable (_ domain: String, _ clientKey: String, _ reason: String) -> Void) {
        onDeny.withLock { $0 = handler }
    }

    /// Handshakes let in and refused since start.
    public var counts: (allowed: Int, denied: Int) { state.withLock { ($0.allowed, $0.denied) } }

    private func run(_ socket: RawSocket) {
        while true {
            var items = [zmq_pollitem_t(socket: socket.raw, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0)]
            if zmq_poll(&items, 1, -1) <= 0 { continue }
            // A ROUTER prepends the requester's routing id; libzmq's ZAP requests start with an empty delimiter.
            while let frames = socket.receive() {
                guard frames.count >= 2 else { continue }
                let envelope = frames[1].isEmpty ? [frames[0], []] : [frames[0]]
                _ = socket.send(envelope + answer(Array(frames.dropFirst(envelope.count))))
            }
        }
    }

    /// RFC 27: the request is version, request id, domain, address, routing id, mechanism, credentials...; the
    /// reply is version, request id, status code, status text, user id, metadata.
    func answer(_ frames: [[UInt8]]) -> [[UInt8]] {
        let requestId = frames.count > 1 ? frames[1] : []
        func reply(_ code: String, _ text: String, user: String = "") -> [[UInt8]] {
            [Array("1.0".utf8), requestId, Array(code.utf8), Array(text.utf8), Array(user.utf8), []]
        }
        guard frames.count >= 6, String(decoding: frames[0], as: UTF8.self) == "1.0" else {
            return reply("400", "malformed ZAP request")
        }
        let domain = String(decoding: frames[2], as: UTF8.self)
        let mechanism = String(decoding: frames[5], as: UTF8.self)
        let authorize = state.withLock { $0.domains[domain] }
        var key = ""
        var reason: String
        if let authorize {
            if mechanism == "CURVE", frames.count >= 7, frames[6].count == 32 {
                key = z85Text(frames[6])
                if let user = authorize(frames[6]) {
                    state.withLock { $0.allowed += 1 }
                    return reply("200", "OK", user: user)
                }
                reason = "key not in the allow-list"
            } else {
                reason = "mechanism \(mechanism) refused: this server takes CURVE only"
            }
        } else {
            reason = "unknown ZAP domain '\(domain)'"
        }
        state.withLock { $0.denied += 1 }
        if let handler = onDeny.withLock({ $0 }) { handler(domain, key, reason) }
        return reply("400", reason)
    }
}

/// Text for a handshake failure a client's socket monitor reported.
func handshakeFailureText(event: Int32, value: UInt32) -> String {
    if event & ZMQ_EVENT_HANDSHAKE_FAILED_AUTH != 0 {
        return "the server refused this client's key (ZAP status \(value))"
    }
    if event & ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL != 0 {
        switch Int32(bitPattern: value) {
        case ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH:
            return "security mechanism mismatch (one side uses CURVE, the other plaintext)"
        default:
            return String(format: "handshake protocol error 0x%08x (a wrong server key?)", value)
        }
    }
    return "the handshake failed (a wrong server key, or one side is plaintext: --insecure)"
}
