import CZeroMQ
import Foundation
import Synchronization

/// One request as it arrived on a server socket.
public struct InboundMessage: Sendable {
    /// The ZeroMQ routing identity of the peer; pass it back to `reply`.
    public let peer: [UInt8]
    public let payload: [UInt8]
    /// The ZAP User-Id the peer's CURVE handshake was accepted with; nil on a plaintext server.
    public let userId: String?
}

/// A ZeroMQ ROUTER socket bound to an endpoint and driven by its own OS thread.
///
/// Requests come out of `messages` (an AsyncStream); replies go in through `reply`, which never blocks.
/// Frames from peers that do not follow the one-frame protocol are dropped and counted, never crash the server.
/// SAFETY: the raw socket is touched only by the I/O thread after `init` hands it over (thread start is a
/// full memory barrier). Other threads share only the mutex-protected outbox and the eventfd waker.
public final class RouterServer: @unchecked Sendable {
    public let endpoint: String
    public let messages: AsyncStream<InboundMessage>
    private let continuation: AsyncStream<InboundMessage>.Continuation
    private let state = Mutex<(outbox: [[[UInt8]]], closed: Bool, malformed: Int, connections: Int)>(([], false, 0, 0))
    private let waker: Waker
    private let zapDomain: String?

    /// Binds `endpoint` (e.g. `tcp://127.0.0.1:7100` or `tcp://127.0.0.1:*` for any free port).
    /// With `curve`, the socket is a CURVE server: the process's ZAP handler is installed first (it refuses every
    /// key `curve.authorize` does not know), and each message carries the User-Id its peer was let in with.
    public init(bind endpoint: String, curve: CurveServer? = nil, maxMessageBytes: Int64 = 512 << 20) throws(TransportError) {
        let socket = try RawSocket(type: ZMQ_ROUTER)
        if let curve {
            do {
                try ZAPHandler.shared.install()
            } catch {
                socket.close()
                throw error
            }
            let domain = ZAPHandler.shared.register(curve.authorize)
            zapDomain = domain
            var on: Int32 = 1
            guard zmq_setsockopt(socket.raw, ZMQ_CURVE_SERVER, &on, 4) == 0,
                  socket.setBytes(ZMQ_CURVE_SECRETKEY, curve.secretKey),
                  socket.setString(ZMQ_ZAP_DOMAIN, domain) else {
                let reason = zmqErrorString()
                ZAPHandler.shared.unregister(domain)
                socket.close()
                throw .system("CURVE server setup failed: \(reason) (is libzmq built with libsodium?)")
            }
        } else {
            zapDomain = nil
        }
        socket.setInt64(ZMQ_MAXMSGSIZE, maxMessageBytes)
        socket.setInt(ZMQ_HEARTBEAT_IVL, 1000)
        socket.setInt(ZMQ_HEARTBEAT_TIMEOUT, 3000)
        socket.setInt(ZMQ_SNDHWM, 100_000)
        socket.setInt(ZMQ_RCVHWM, 100_000)
        // Connections accepted and lost, for the live-connection count (`connections`); read by the I/O thread
        // every poll round.
        let monitor = attachMonitor(socket, events: ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED, name: "router")
        if zmq_bind(socket.raw, endpoint) != 0 {
            let reason = zmqErrorString()
            if let zapDomain { ZAPHandler.shared.unregister(zapDomain) }
            Self.close(socket, monitor: monitor)
            throw .bind(endpoint: endpoint, reason: reason)
        }
        self.endpoint = socket.lastEndpoint()
        do {
            self.waker = try Waker()
        } catch {
            if let zapDomain { ZAPHandler.shared.unregister(zapDomain) }
            Self.close(socket, monitor: monitor)
            throw error
        }
        (messages, continuation) = AsyncStream.makeStream(of: InboundMessage.self, bufferingPolicy: .unbounded)
        let box = SocketBox(socket)
        let monitorBox = monitor.map(SocketBox.init)
        startDedicatedThread(name: "zmq-router") { [self] in self.run(box.socket, monitor: monitorBox?.socket) }
    }

    /// Queues a reply to `peer`. Never blocks; dropped silently if the peer went away.
    public func reply(to peer: [UInt8], _ payload: [UInt8]) {
        state.withLock { $0.outbox.append([peer, payload]) }
        waker.wake()
    }

    /// Number of malformed frames received and dropped so far.
    public var malformedCount: Int { state.withLock { $0.malformed } }

    /// Live connections from peers (accepted and not yet lost), as of the last poll round (at most 200 ms old).
    public var connections: Int { state.withLock { $0.connections } }

    public func close() {
        state.withLock { $0.closed = true }
        waker.wake()
    }

    private func run(_ socket: RawSocket, monitor: RawSocket?) {
        while true {
            let (outbox, closed) = state.withLock { s -> ([[[UInt8]]], Bool) in
                let o = s.outbox
                s.outbox.removeAll(keepingCapacity: true)
                return (o, s.closed)
            }
            for frames in outbox { _ = socket.send(frames) }
            if closed { break }
            let (readable, woken) = poll(socket: socket, waker: waker, timeoutMs: 200)
            if woken { waker.drain() }
            if readable {
                var n = 0
                while n < 1000 {
                    var user: String?
                    guard let frames = socket.receive(userId: &user) else { break }
                    n += 1
                    // ROUTER prepends the identity. Accept [id, payload] and REQ-style [id, "", payload].
                    if frames.count == 2 {
                        continuation.yield(InboundMessage(peer: frames[0], payload: frames[1], userId: user))
                    } else if frames.count == 3, frames[1].isEmpty {
                        continuation.yield(InboundMessage(peer: frames[0], payload: frames[2], userId: user))
                    } else {
                        state.withLock { $0.malformed += 1 }
                    }
                }
            }
            if let monitor { countConnections(monitor) }
        }
        continuation.finish()
        if let zapDomain { ZAPHandler.shared.unregister(zapDomain) }
        Self.close(socket, monitor: monitor)
        waker.close()
    }

    /// A monitor event is two frames: 2 bytes of event id and 4 of value, then the endpoint.
    private func countConnections(_ monitor: RawSocket) {
        var delta = 0
        while let frames = monitor.receive() {
            guard let first = frames.first, first.count >= 2 else { continue }
            let event = Int32(UInt16(first[0]) | UInt16(first[1]) << 8)
            if event & ZMQ_EVENT_ACCEPTED != 0 { delta += 1 }
            if event & ZMQ_EVENT_DISCONNECTED != 0 { delta -= 1 }
        }
        if delta != 0 { state.withLock { $0.connections = max(0, $0.connections + delta) } }
    }

    /// Stops the monitor before the socket closes: libzmq sends monitor events with a blocking send from its I/O
    /// thread, and an event for a monitor nobody reads would block that thread (see DealerClient).
    private static func close(_ socket: RawSocket, monitor: RawSocket?) {
        if monitor != nil { _ = zmq_socket_monitor(socket.raw, nil, 0) }
        socket.close()
        monitor?.close()
    }
}

/// SAFETY: carries a socket to the thread that will own it; never used by two threads at once.
struct SocketBox: @unchecked Sendable {
    let socket: RawSocket
    init(_ socket: RawSocket) { self.socket = socket }
}
