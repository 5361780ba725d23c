import CZeroMQ
import Foundation
import Glibc
import Synchronization

/// Errors from the message transport. Callers turn them into `ChorusError`s with advice.
public enum TransportError: Error, Sendable, CustomStringConvertible {
    case bind(endpoint: String, reason: String)
    case connect(endpoint: String, reason: String)
    case timeout(endpoint: String, milliseconds: Int)
    case closed
    /// The connection a request went out on was lost before its reply came (ZMTP heartbeats timed out: the peer
    /// is cut off or gone). The request may or may not have been served.
    case disconnected(endpoint: String)
    /// The CURVE handshake with the peer failed: it refused this client's key, the server key is wrong, or one side
    /// is plaintext.
    case handshake(endpoint: String, reason: String)
    case system(String)

    public var description: String {
        switch self {
        case let .bind(e, r): return "cannot bind \(e): \(r)"
        case let .connect(e, r): return "cannot connect to \(e): \(r)"
        case let .timeout(e, ms): return "no reply from \(e) within \(ms) ms"
        case .closed: return "transport closed"
        case let .disconnected(e): return "the connection to \(e) was lost (the peer is cut off or gone); the request may or may not have been served"
        case let .handshake(e, r): return "not allowed to connect to \(e): \(r)"
        case let .system(s): return s
        }
    }
}

func zmqErrorString() -> String {
    String(cString: zmq_strerror(zmq_errno()))
}

/// The process-wide ZeroMQ context.
///
/// SAFETY: a zmq context is documented thread-safe; the pointer is created once and never freed
/// (it lives as long as the process), so sharing it across threads is sound.
final class ZMQContext: @unchecked Sendable {
    static let shared = ZMQContext()
    /// nil when libzmq could not create a context (out of memory or file descriptors): every socket then fails
    /// with that error instead of the process stopping.
    let raw: UnsafeMutableRawPointer?

    private init() {
        raw = zmq_ctx_new()
        if let raw { zmq_ctx_set(raw, ZMQ_IO_THREADS, 1) }
    }
}

/// A wake-up channel (Linux eventfd) that sits in the I/O thread's zmq_poll set.
/// SAFETY: eventfd reads/writes are atomic syscalls; the fd is closed only by the owning I/O thread at exit.
final class Waker: @unchecked Sendable {
    let fd: Int32
    init() throws(TransportError) {
        let fd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard fd >= 0 else { throw .system("eventfd failed: errno \(errno)") }
        self.fd = fd
    }
    func wake() {
        var one: UInt64 = 1
        _ = withUnsafeBytes(of: &one) { write(fd, $0.baseAddress, 8) }
    }
    func drain() {
        var v: UInt64 = 0
        _ = withUnsafeMutableBytes(of: &v) { read(fd, $0.baseAddress, 8) }
    }
    func close() { _ = Glibc.close(fd) }
}

/// Thin helpers over one raw socket. Only ever used from the thread that owns the socket.
struct RawSocket {
    let raw: UnsafeMutableRawPointer

    init(type: Int32) throws(TransportError) {
        guard let ctx = ZMQContext.shared.raw else {
            throw .system("zmq_ctx_new failed: \(zmqErrorString()) (out of memory or file descriptors? raise `ulimit -n`)")
        }
        guard let s = zmq_socket(ctx, type) else { throw .system("zmq_socket: \(zmqErrorString())") }
        raw = s
        setInt(ZMQ_LINGER, 0)
    }

    func setInt(_ option: Int32, _ value: Int32) {
        var v = value
        _ = zmq_setsockopt(raw, option, &v, MemoryLayout<Int32>.size)
    }

    func setInt64(_ option: Int32, _ value: Int64) {
        var v = value
        _ = zmq_setsockopt(raw, option, &v, MemoryLayout<Int64>.size)
    }

    func lastEndpoint() -> String {
        var buf = [CChar](repeating: 0, count: 512)
        var len = buf.count
        _ = zmq_getsockopt(raw, ZMQ_LAST_ENDPOINT, &buf, &len)
        return String(decoding: buf.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Sends frames as one multipart message without blocking. Returns false when the message could not be queued.
    func send(_ frames: [[UInt8]]) -> Bool {
        for (i, frame) in frames.enumerated() {
            let more = i < frames.count - 1 ? ZMQ_SNDMORE : 0
            let rc = frame.withUnsafeBytes { zmq_send(raw, $0.baseAddress, $0.count, more | ZMQ_DONTWAIT) }
            if rc < 0 { return false }
        }
        return true
    }

    /// Receives one whole multipart message without blocking; nil when none is waiting.
    func receive() -> [[UInt8]]? {
        var ignored: String?
        return receive(userId: &ignored)
    }

    /// The same, and the ZAP User-Id the message's connection was let in with (CURVE servers), if any.
    func receive(userId: inout String?) -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        while true {
            var msg = zmq_msg_t()
            zmq_msg_init(&msg)
            defer { zmq_msg_close(&msg) }
            let rc = zmq_msg_recv(&msg, raw, frames.isEmpty ? ZMQ_DONTWAIT : 0)
            if rc < 0 { return frames.isEmpty ? nil : frames }
            let size = zmq_msg_size(&msg)
            let frame: [UInt8]
            if size > 0, let data = zmq_msg_data(&msg) {
                frame = Array(UnsafeRawBufferPointer(start: data, count: size))
            } else {
                frame = []
            }
            frames.append(frame)
            if userId == nil, let u = zmq_msg_gets(&msg, "User-Id") { userId = String(cString: u) }
            if zmq_msg_more(&msg) == 0 { return frames }
        }
    }

    func close() { zmq_close(raw) }
}

/// Polls a socket and a waker. Returns (socketReadable, wakerReadable).
func poll(socket: RawSocket, waker: Waker, timeoutMs: Int) -> (Bool, Bool) {
    var items = [
        zmq_pollitem_t(socket: socket.raw, fd: 0, events: Int16(ZMQ_POLLIN), revents: 0),
        zmq_pollitem_t(socket: nil, fd: waker.fd, events: Int16(ZMQ_POLLIN), revents: 0),
    ]
    let rc = zmq_poll(&items, 2, timeoutMs)
    if rc <= 0 { return (false, false) }
    return (items[0].revents & Int16(ZMQ_POLLIN) != 0, items[1].revents & Int16(ZMQ_POLLIN) != 0)
}

/// The libzmq version this process runs on, e.g. "4.3.4" (what `chorus version` prints).
public func zmqLibraryVersion() -> String {
    var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
    zmq_version(&major, &minor, &patch)
    return "\(major).\(minor).\(patch)"
}

/// Attaches a socket monitor for `events` to `socket` and connects a PAIR socket to read them, before the socket
/// binds or connects, so no event is missed. Nil when either step fails; then no monitor is left attached, since
/// libzmq sends monitor events with a blocking send and an unread monitor would block its I/O thread.
func attachMonitor(_ socket: RawSocket, events: Int32, name: String) -> RawSocket? {
    let endpoint = "inproc://chorus-\(name)-monitor-\(UUID().uuidString)"
    guard zmq_socket_monitor(socket.raw, endpoint, events) == 0 else { return nil }
    var monitor: RawSocket?
    if let pair = try? RawSocket(type: ZMQ_PAIR) {
        if zmq_connect(pair.raw, endpoint) == 0 { monitor = pair } else { pair.close() }
    }
    if monitor == nil { _ = zmq_socket_monitor(socket.raw, nil, 0) }
    return monitor
}

/// Starts a dedicated OS thread (never the Swift cooperative pool) for blocking I/O.
public func startDedicatedThread(name: String, _ body: @escaping @Sendable () -> Void) {
    let t = Thread { body() }
    t.name = name
    t.start()
}
