import Dispatch
import Foundation
import Glibc
import Synchronization

/// One HTTP request, as far as a read-only endpoint needs it.
public struct HTTPRequest: Sendable {
    public let method: String
    /// The path without the query, e.g. `/readyz`.
    public let path: String
    /// What followed `?`, without it ("" when none).
    public let query: String
}

public struct HTTPResponse: Sendable {
    public var status: Int
    public var contentType: String
    public var body: [UInt8]
    /// More header lines, e.g. `["Allow": "GET, HEAD"]`.
    public var headers: [String: String] = [:]

    public init(status: Int, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    public init(status: Int, text: String) {
        self.init(status: status, body: Array(text.utf8))
    }
}

/// A small HTTP/1.1 server for read-only operator endpoints (health, readiness; later metrics and a status page):
/// GET and HEAD only, one short response per connection (`Connection: close`), requests up to 8 KiB.
///
/// Why not a framework: these endpoints answer a few requests a second from a probe or a scraper, and the
/// servers with routing, keep-alive and TLS (hummingbird, NIO) add minutes to every CI build. This one is a few
/// POSIX calls on a thread of its own, so blocking `accept`/`recv` never runs on the cooperative pool. Each
/// connection has 2 s in all to send its request (a client that trickles bytes is cut off at that deadline) and
/// 2 s per write to take the response, so a stalled client delays the next one by seconds at most.
public final class HTTPServer: Sendable {
    public typealias Handler = @Sendable (HTTPRequest) async -> HTTPResponse
    /// Answers a request on the server's own thread, without the Swift pool (liveness must not depend on it);
    /// nil passes the request on to the async handler.
    public typealias Immediate = @Sendable (HTTPRequest) -> HTTPResponse?

    /// The bound address, `HOST:PORT`, with the real port when 0 was asked for.
    public let address: String
    public let port: Int
    private let fd: Int32
    private let closed = Atomic<Bool>(false)

    /// Parses `HOST:PORT`, `:PORT` or `PORT` (host 127.0.0.1: loopback unless a host is given). IPv4 only.
    public static func parse(_ address: String) throws(TransportError) -> (host: String, port: UInt16) {
        var host = "127.0.0.1"
        var portText = address
        if let colon = address.lastIndex(of: ":") {
            let h = String(address[..<colon])
            if !h.isEmpty { host = h == "localhost" ? "127.0.0.1" : h }
            portText = String(address[address.index(after: colon)...])
        }
        guard let port = UInt16(portText) else {
            throw .bind(endpoint: address, reason: "expected HOST:PORT, e.g. 127.0.0.1:9100 (0.0.0.0 for every interface)")
        }
        var probe = in_addr()
        guard inet_pton(AF_INET, host, &probe) == 1 else {
            throw .bind(endpoint: address, reason: "'\(host)' is not an IPv4 address (e.g. 127.0.0.1 or 0.0.0.0)")
        }
        return (host, port)
    }

    public init(address: String, immediate: Immediate? = nil, handler: @escaping Handler) throws(TransportError) {
        let (host, port) = try Self.parse(address)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .bind(endpoint: address, reason: String(cString: strerror(errno))) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        inet_pton(AF_INET, host, &sa.sin_addr)
        let bound = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(fd)
            throw .bind(endpoint: address, reason: reason)
        }
        var got = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &got) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: got.sin_port))
        self.address = "\(host):\(self.port)"
        startDedicatedThread(name: "http") { [self] in self.acceptLoop(immediate, handler) }
    }

    /// Stops accepting. Never blocks: the server's thread closes the socket within about 0.2 s (after a request
    /// it is serving). Idempotent; the server lives until then.
    public func close() {
        closed.store(true, ordering: .releasing)
    }

    private func acceptLoop(_ immediate: Immediate?, _ handler: @escaping Handler) {
        defer { Glibc.close(fd) }
        while !closed.load(ordering: .acquiring) {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 200) > 0 else { continue }
            let c = accept(fd, nil, nil)
            guard c >= 0 else { continue }
            _ = fcntl(c, F_SETFD, FD_CLOEXEC)
            serve(c, immediate, handler)
            Glibc.close(c)
        }
    }

    private func serve(_ c: Int32, _ immediate: Immediate?, _ handler: @escaping Handler) {
        var tv = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var head = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 2048)
        let end: [UInt8] = Array("\r\n\r\n".utf8)
        // One deadline for the whole request, however its bytes trickle in.
        let deadline = ContinuousClock.now + .seconds(2)
        while head.count < 8192 {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return }
            var p = pollfd(fd: c, events: Int16(POLLIN), revents: 0)
            let ms = Int32(max(1, left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
            guard poll(&p, 1, ms) > 0 else { return }  // no (more of the) request in time
            let n = buf.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { return }  // closed
            head += buf[0..<n]
            if head.count >= 4, Self.contains(head, end) { break }
        }
        guard Self.contains(head, end) else {
            return send(c, HTTPResponse(status: 431, text: "request header too large\n"), head: false)
        }
        let line = head.prefix { $0 != UInt8(ascii: "\r") }
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: true)
        guard parts.count == 3, let target = String(bytes: parts[1], encoding: .utf8) else {
            return send(c, HTTPResponse(status: 400, text: "bad request line\n"), head: false)
        }
        let method = String(decoding: parts[0], as: UTF8.self)
        guard method == "GET" || method == "HEAD" else {
            var r = HTTPResponse(status: 405, text: "only GET and HEAD: these endpoints are read-only\n")
            r.headers["Allow"] = "GET, HEAD"
            return send(c, r, head: false)
        }
        let q = target.firstIndex(of: "?")
        let request = HTTPRequest(method: method, path: String(target[..<(q ?? target.endIndex)]),
                                  query: q.map { String(target[target.index(after: $0)...]) } ?? "")
        send(c, immediate?(request) ?? Self.call(handler, request), head: method == "HEAD")
    }

    /// Runs the async handler from this (non-pool) thread, waiting at most 5 s for it.
    private static func call(_ handler: @escaping Handler, _ request: HTTPRequest) -> HTTPResponse {
        let result = Mutex<HTTPResponse?>(nil)
        let done = DispatchSemaphore(value: 0)
        let task = Task {
            let r = await handler(request)
            result.withLock { $0 = r }
            done.signal()
        }
        guard done.wait(timeout: .now() + 5) == .success, let r = result.withLock({ $0 }) else {
            task.cancel()
            return HTTPResponse(status: 503, text: "no answer within 5 s\n")
        }
        return r
    }

    private func send(_ c: Int32, _ r: HTTPResponse, head: Bool) {
        let reason = [200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed",
                      431: "Request Header Fields Too Large", 500: "Internal Server Error",
                      503: "Service Unavailable"][r.status] ?? "Status"
        var out = Array("""
            HTTP/1.1 \(r.status) \(reason)\r
            Content-Type: \(r.contentType)\r
            Content-Length: \(r.body.count)\r
            Cache-Control: no-store\r
            Connection: close\r

            """.utf8)
        for (k, v) in r.headers.sorted(by: { $0.key < $1.key }) { out += Array("\(k): \(v)\r\n".utf8) }
        out += Array("\r\n".utf8)
        if !head { out += r.body }
        var sent = 0
        while sent < out.count {
            let n = out.withUnsafeBytes { Glibc.send(c, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            guard n > 0 else { return }
            sent += n
        }
    }

    private static func contains(_ hay: [UInt8], _ needle: [UInt8]) -> Bool {
        guard hay.count >= needle.count else { return false }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] {
            if Array(hay[i..<(i + needle.count)]) == needle { return true }
        }
        return false
    }
}
