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
    }
    private let state = Mutex(State())

    public init(connect endpoint: String, correlate: @escaping @Sendable ([UInt8]) -> UInt64?) throws(TransportError) {
        let socket = try RawSocket(type: ZMQ_DEALER)
        socket.setInt(ZMQ_RECONNECT_IVL, 100)
        socket.setInt(ZMQ_RECONNECT_IVL_MAX, 2000)
        // ZMTP heartbeats: a PING every second; a connection silent for 3 s is dropped and re-dialled (with the
        // reconnect backoff above), so a half-open TCP connection to a crashed peer does not linger.
        socket.setInt(ZMQ_HEARTBEAT_IVL, 1000)
        socket.setInt(ZMQ_HEARTBEAT_TIMEOUT, 3000)
        socket.setInt(ZMQ_SNDHWM, 100_000)
        socket.setInt(ZMQ_RCVHWM, 100_000)
        if zmq_connect(socket.raw, endpoint) != 0 {
            let reason = zmqErrorString()
            socket.close()
            throw .connect(endpoint: endpoint, reason: reason)
        }
        self.endpoint = endpoint
        self.correlate = correlate
        self.waker = try Waker()
        let box = SocketBox(socket)
        startDedicatedThread(name: "zmq-dealer") { [self] in self.run(box.socket) }
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

    private func run(_ socket: RawSocket) {
        var unsent: [[[UInt8]]] = []
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
            expire()
        }
        let all = state.withLock { s -> [Pending] in
            let v = Array(s.pending.values)
            s.pending.removeAll()
            return v
        }
        for p in all { p.continuation.resume(throwing: TransportError.closed) }
        socket.close()
        waker.close()
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
