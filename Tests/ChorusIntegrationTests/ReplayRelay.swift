import Foundation
import Synchronization

/// A one-connection TCP relay on loopback that records the bytes its client sends: a real CURVE session, captured
/// on the wire, to replay on another connection (SecurityTests).
final class RecordingRelay: @unchecked Sendable {
    let port: UInt16
    private let listenFD: Int32
    private let recorded = Mutex<[UInt8]>([])
    private let done = Atomic<Bool>(false)

    init(to target: UInt16) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket failed") }
        var addr = loopback(port: 0)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 1) == 0 else { close(fd); throw HarnessError("relay bind/listen failed") }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        listenFD = fd
        port = UInt16(bigEndian: addr.sin_port)
        let t = Thread { [self] in self.pump(listen: fd, target: target) }
        t.start()
    }

    /// What the client sent so far.
    var clientBytes: [UInt8] { recorded.withLock { $0 } }

    func stop() { done.store(true, ordering: .relaxed) }

    private func pump(listen fd: Int32, target: UInt16) {
        let client = accept(fd, nil, nil)
        close(fd)
        guard client >= 0 else { return }
        let server = dialLoopback(target)
        guard server >= 0 else { close(client); return }
        defer { close(client); close(server) }
        var buf = [UInt8](repeating: 0, count: 65536)
        while !done.load(ordering: .relaxed) {
            var fds = [pollfd(fd: client, events: Int16(POLLIN), revents: 0), pollfd(fd: server, events: Int16(POLLIN), revents: 0)]
            guard poll(&fds, 2, 100) >= 0 else { return }
            for (i, p) in fds.enumerated() where p.revents != 0 {
                let n = buf.withUnsafeMutableBytes { read(p.fd, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                let chunk = Array(buf[0..<n])
                if i == 0 { recorded.withLock { $0.append(contentsOf: chunk) } }
                _ = chunk.withUnsafeBytes { send(i == 0 ? server : client, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }
            }
        }
    }
}

func loopback(port: UInt16) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}

/// A connected TCP socket to 127.0.0.1:port, or -1.
func dialLoopback(_ port: UInt16) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return -1 }
    var addr = loopback(port: port)
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if ok != 0 { close(fd); return -1 }
    return fd
}

/// Sends `bytes` on a new connection to 127.0.0.1:port and returns what comes back within `seconds`.
func replayTCP(port: UInt16, bytes: [UInt8], seconds: Double) -> [UInt8] {
    let fd = dialLoopback(port)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var out: [UInt8] = []
    var buf = [UInt8](repeating: 0, count: 65536)
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        var p = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0)]
        guard poll(&p, 1, 100) > 0 else { continue }
        let n = buf.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { break }
        out.append(contentsOf: buf[0..<n])
    }
    return out
}
