import CZeroMQ
import Foundation
import Synchronization

/// A request/reply client over one ZeroMQ DEALER socket, driven by its own OS thread.
///
/// Many requests may be in flight at once; replies are matched by a correlation id that the caller's
/// `correlate` function reads from each reply. Every request has a deadline, so an unreachable peer
/// gives `TransportError.timeout` instead of a hang.
/// SAFETY: the raw socket is touched only by the I/O thread; callers share the mutex-protected state.
public final class DealerClient: @unchecked Sendable {
    public let endpoint: String
    private let waker: Waker
    private let correlate: @Sendable ([UInt8]) -> UInt64?

    private struct Pending {
        var continuation: CheckedContinuation<[UInt8], any Error>
        var deadline: ContinuousClock.Instant
        var timeoutMs: Int
    }
    private struct State {
        /// Messages to send, each one or more frames (requests are one frame; `post` may send several).
        var outbox: [[[UInt8]]] = []
        var pending: [UInt64: Pending] = [:]
        var closed = false
        /// Since when the connection has been down: after it was up once, or since the client was made (nil: up).
        var downSince: ContinuousClock.Instant? = .now
        var everUp = false
        /// Why the last CURVE handshake was refused, until one succeeds: requests then fail at once with it.
        var handshakeFailure: String?
        /// A handshake that failed without detail (a wrong server key, or a connection lost early): named in the
        /// message of a peer that never came up.
        var vagueFailure: String?
        /// Whether a handshake ever succeeded on this client.
        var handshaked = false
    }
    private let state = Mutex(State())

    /// With `curve`, the socket is a CURVE client: it only talks to the server holding `curve.serverKey`'s secret,
    /// and a refused or failed handshake fails the requests at once with `TransportError.handshake`.
    public init(connect endpoint: String, curve: CurveClient? = nil,
                correlate: @escaping @Sendable ([UInt8]) -> UInt64?) throws(TransportError) {
        let socket = try RawSocket(type: ZMQ_DEALER)
        if let curve {
            do {
                try socket.configure(client: curve)
            } catch {
                socket.close()
                throw error
            }
        }
        socket.setInt(ZMQ_RECONNECT_IVL, 100)
        socket.setInt(ZMQ_RECONNECT_IVL_MAX, 2000)
        // A TCP connect that gets no answer (the peer's host cut off by a network partition) is given up after
        // 2 s and dialled again, so the next dial after a heal is never stuck behind the kernel's SYN retries
        // (6 retries, up to about 2 minutes); seen in scripts/netpartition.sh scenario 3.
        socket.setInt(ZMQ_CONNECT_TIMEOUT, 2000)
        // ZMTP heartbeats: a PING every second; a connection silent for 3 s is dropped and re-dialled (with the
        // reconnect backoff above), so a half-open TCP connection to a crashed peer does not linger.
        socket.setInt(ZMQ_HEARTBEAT_IVL, 1000)
        socket.setInt(ZMQ_HEARTBEAT_TIMEOUT, 3000)
        socket.setInt(ZMQ_SNDHWM, 100_000)
        socket.setInt(ZMQ_RCVHWM, 100_000)
        // A lost connection (ZMTP heartbeat timeout, reset) takes the replies of the requests sent on it with it:
        // the socket monitor tells the I/O thread, which fails them at once instead of letting them wait out their
        // deadline (a 20 s write batch, a 30 min task). Attached before the connect, so no event is missed.
        // Handshake failures are silent otherwise: a refused key would look like a peer that never answers.
        let monitor = attachMonitor(socket, events: ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED
                                    | ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                    | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH,
                                    name: "dealer")
        if zmq_connect(socket.raw, endpoint) != 0 {
            let reason = zmqErrorString()
            Self.close(socket, monitor: monitor)
            throw .connect(endpoint: endpoint, reason: reason)
        }
        self.endpoint = endpoint
        self.correlate = correlate
        do {
            self.waker = try Waker()
        } catch {
            Self.close(socket, monitor: monitor)
            throw error
        }
        let box = SocketBox(socket)
        let monitorBox = monitor.map(SocketBox.init)
        startDedicatedThread(name: "zmq-dealer") { [self] in self.run(box.socket, monitor: monitorBox?.socket) }
    }

    /// Sends `payload` and waits for the reply carrying `correlationId`, at most `timeout`.
    public func request(_ payload: [UInt8], correlationId: UInt64, timeout: Duration) async throws -> [UInt8] {
        let ms = Int(timeout.components.seconds * 1000 + timeout.components.attoseconds / 1_000_000_000_000_000)
        // A cancelled caller stops waiting at once (the reply, if one still comes, is dropped): a cancelled job's
        // driver does not wait for its workers' task replies.
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (cont: CheckedContinuation<[UInt8], any Error>) in
                let accepted = state.withLock { s -> Bool in
                    if s.closed { return false }
                    s.pending[correlationId] = Pending(continuation: cont, deadline: .now + timeout, timeoutMs: ms)
                    s.outbox.append([payload])
                    return true
                }
                if accepted { waker.wake() } else { cont.resume(throwing: TransportError.closed) }
                if Task.isCancelled { abandon(correlationId) }
            }
        } onCancel: {
            abandon(correlationId)
        }
    }

    /// Fails a pending request with CancellationError (whoever removes it from `pending` resumes it, once).
    private func abandon(_ correlationId: UInt64) {
        if let p = state.withLock({ $0.pending.removeValue(forKey: correlationId) }) {
            p.continuation.resume(throwing: CancellationError())
        }
    }

    /// Sends one message of any frames without waiting for a reply (a reply that comes is dropped unless its
    /// correlation id is awaited). For tests and the wire fuzzer, which send malformed multi-frame messages.
    public func post(frames: [[UInt8]]) {
        let accepted = state.withLock { s -> Bool in
            if s.closed { return false }
            s.outbox.append(frames)
            return true
        }
        if accepted { waker.wake() }
    }

    /// Fails every request in flight and stops the I/O thread.
    public func close() {
        state.withLock { $0.closed = true }
        waker.wake()
    }

    private func run(_ socket: RawSocket, monitor: RawSocket?) {
        var unsent: [[[UInt8]]] = []
        // After a refused handshake libzmq 4.3 does not dial again by itself: the socket re-dials after a backoff
        // (1 s, doubling up to 8 s), so a key added to the allow-list later (`chorus keys reload`) is let in
        // without a new client.
        var redialAt: ContinuousClock.Instant?
        var redialBackoff: Duration = .seconds(1)
        while true {
            let (outbox, closed) = state.withLock { s -> ([[[UInt8]]], Bool) in
                let o = s.outbox
                s.outbox.removeAll(keepingCapacity: true)
                return (o, s.closed)
            }
            unsent.append(contentsOf: outbox)
            if closed { break }
            var sentCount = 0
            for frames in unsent {
                if !socket.send(frames) { break }
                sentCount += 1
            }
            unsent.removeFirst(sentCount)
            let (readable, woken) = poll(socket: socket, waker: waker, timeoutMs: unsent.isEmpty ? 50 : 5)
            if woken { waker.drain() }
            if readable {
                while let frames = socket.receive() {
                    guard let payload = frames.last, let id = correlate(payload) else { continue }
                    let p = state.withLock { $0.pending.removeValue(forKey: id) }
                    p?.continuation.resume(returning: payload)
                }
            }
            if let monitor {
                switch checkDisconnects(monitor) {
                case .refused:
                    if redialAt == nil { redialAt = .now + redialBackoff }
                case .succeeded:
                    redialAt = nil
                    redialBackoff = .seconds(1)
                case .nothing:
                    break
                }
            }
            if let at = redialAt, ContinuousClock.now >= at {
                _ = zmq_disconnect(socket.raw, endpoint)
                _ = zmq_connect(socket.raw, endpoint)
                redialAt = nil
                redialBackoff = min(redialBackoff * 2, .seconds(8))
            }
            expire()
        }
        let all = state.withLock { s -> [Pending] in
            let v = Array(s.pending.values)
            s.pending.removeAll()
            return v
        }
        for p in all { p.continuation.resume(throwing: TransportError.closed) }
        Self.close(socket, monitor: monitor)
        waker.close()
    }

    /// Stops the monitor before anything is closed. libzmq sends monitor events with a blocking send from its
    /// I/O thread: an event for a monitor whose reader is gone (the DISCONNECTED of the socket's own teardown)
    /// would block that thread, and with it every connection of the process.
    private static func close(_ socket: RawSocket, monitor: RawSocket?) {
        if monitor != nil { _ = zmq_socket_monitor(socket.raw, nil, 0) }
        socket.close()
        monitor?.close()
    }

    private enum HandshakeNews { case nothing, refused, succeeded }

    /// How long requests wait for a connection that was lost before they fail (the ZMTP heartbeat timeout): long
    /// enough for a restarted peer to be dialled again, short enough that a peer cut off by the network costs a
    /// few seconds, not a request's whole deadline.
    static let downGrace: Duration = .seconds(3)
    /// The same for a peer this client never reached: longer than the CLI's 3 s default timeout, so a command
    /// aimed at a wrong address still says "no reply from …".
    static let neverUpGrace: Duration = .seconds(5)

    /// Follows the connection through the monitor (checked every poll round, at most 50 ms apart). When it drops,
    /// every request in flight fails at once: their replies went with it. Requests sent while it stays down fail
    /// once it has been down for `downGrace` (before the first connection, only their deadline applies). A
    /// monitor event is two frames: 2 bytes of event id and 4 of value, then the endpoint. A refused handshake
    /// fails every request at once, and the ones sent later until a handshake succeeds; says whether one was
    /// refused or succeeded this round (the run loop re-dials after a refusal).
    private func checkDisconnects(_ monitor: RawSocket) -> HandshakeNews {
        var lost = false
        var up = false
        var failure: String?
        var succeeded = false
        var vague: String?
        while let frames = monitor.receive() {
            guard let first = frames.first, first.count >= 2 else { continue }
            let event = Int32(UInt16(first[0]) | UInt16(first[1]) << 8)
            let value = first.count >= 6
                ? UInt32(first[2]) | UInt32(first[3]) << 8 | UInt32(first[4]) << 16 | UInt32(first[5]) << 24 : 0
            if event & ZMQ_EVENT_DISCONNECTED != 0 { lost = true; up = false }
            if event & ZMQ_EVENT_CONNECTED != 0 { up = true }
            if event & ZMQ_EVENT_HANDSHAKE_SUCCEEDED != 0 { succeeded = true; failure = nil }
            // A refusal by the server (ZAP) or a protocol error is definite and sticky until a handshake succeeds.
            // NO_DETAIL is any error before the handshake ended: a wrong server key or a plaintext server (sticky
            // too, while no handshake ever succeeded), or a reset or a peer that died (a lost connection).
            if event & (ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0 {
                failure = handshakeFailureText(event: event, value: value)
                up = false
                succeeded = false
            } else if event & ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL != 0 {
                vague = handshakeFailureText(event: event, value: value)
                lost = true
                up = false
            }
        }
        let now = ContinuousClock.now
        let (failed, neverUp, refused, hint) = state.withLock { s -> ([Pending], Bool, String?, String?) in
            if let vague {
                s.vagueFailure = vague
                if !s.handshaked, failure == nil { failure = vague }
            }
            if succeeded { s.handshakeFailure = nil; s.vagueFailure = nil; s.handshaked = true }
            if let failure { s.handshakeFailure = failure }
            if up { s.downSince = nil; s.everUp = true } else if lost { s.downSince = now }
            if failure != nil { s.downSince = s.downSince ?? now }
            let grace = s.everUp ? Self.downGrace : Self.neverUpGrace
            let refused = s.downSince == nil ? nil : s.handshakeFailure
            guard lost || refused != nil || s.downSince.map({ now - $0 >= grace }) == true else {
                return ([], false, nil, nil)
            }
            let v = Array(s.pending.values)
            s.pending.removeAll()
            return (v, !s.everUp, refused, s.vagueFailure)
        }
        let error: TransportError = if let refused {
            .handshake(endpoint: endpoint, reason: refused)
        } else if neverUp {
            .connect(endpoint: endpoint, reason: "no connection within \(Self.neverUpGrace.components.seconds) s ("
                     + (hint ?? "the peer is down or cut off") + ")")
        } else {
            .disconnected(endpoint: endpoint)
        }
        for p in failed { p.continuation.resume(throwing: error) }
        return failure != nil ? .refused : succeeded ? .succeeded : .nothing
    }

    private func expire() {
        let now = ContinuousClock.now
        let expired = state.withLock { s -> [Pending] in
            let ids = s.pending.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { s.pending.removeValue(forKey: $0) }
        }
        for p in expired {
            p.continuation.resume(throwing: TransportError.timeout(endpoint: endpoint, milliseconds: p.timeoutMs))
        }
    }
}
