import ChorusTransport
import Foundation
import Glibc
import Testing

/// The read-only HTTP endpoint server, over real loopback sockets.
@Suite struct HTTPServerTests {
    private func connectTo(_ port: Int) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = UInt16(port).bigEndian
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr)
        let ok = withUnsafePointer(to: &sa) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else {
            close(fd)
            throw HTTPTestError("connect: \(String(cString: strerror(errno)))")
        }
        return fd
    }

    /// Sends `request` raw and returns everything the server wrote before closing.
    private func exchange(_ port: Int, _ request: String, pauseAfterSend: Double = 0) throws -> String {
        let fd = try connectTo(port)
        defer { close(fd) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array(request.utf8)
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        if pauseAfterSend > 0 { usleep(UInt32(pauseAfterSend * 1_000_000)) }
        var out = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buf.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func server() throws -> HTTPServer {
        try HTTPServer(address: "127.0.0.1:0") { req in
            switch req.path {
            case "/readyz": return HTTPResponse(status: 503, text: "not ready: \(req.query)\n")
            case "/slow":
                try? await Task.sleep(for: .seconds(30))
                return HTTPResponse(status: 200, text: "late\n")
            default: return HTTPResponse(status: 200, text: "path=\(req.path)\n")
            }
        }
    }

    @Test func answersGetAndHeadAndRefusesWrites() throws {
        let s = try server()
        defer { s.close() }
        #expect(s.port > 0 && s.address == "127.0.0.1:\(s.port)")
        let get = try exchange(s.port, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(get.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(get)")
        #expect(get.contains("Content-Length: 14\r\n") && get.hasSuffix("\r\n\r\npath=/healthz\n"), "\(get)")
        let ready = try exchange(s.port, "GET /readyz?why=1 HTTP/1.1\r\n\r\n")
        #expect(ready.hasPrefix("HTTP/1.1 503 Service Unavailable\r\n") && ready.hasSuffix("not ready: why=1\n"), "\(ready)")
        // HEAD: the headers of GET, no body.
        let head = try exchange(s.port, "HEAD /healthz HTTP/1.1\r\n\r\n")
        #expect(head.contains("Content-Length: 14\r\n") && head.hasSuffix("\r\n\r\n"), "\(head)")
        let post = try exchange(s.port, "POST /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n")
        #expect(post.hasPrefix("HTTP/1.1 405 ") && post.contains("Allow: GET, HEAD\r\n"), "\(post)")
        #expect(try exchange(s.port, "garbage\r\n\r\n").hasPrefix("HTTP/1.1 400 "))
        let huge = "GET / HTTP/1.1\r\n" + String(repeating: "X-Pad: \(String(repeating: "a", count: 100))\r\n", count: 100)
        #expect(try exchange(s.port, huge).hasPrefix("HTTP/1.1 431 "))
    }

    /// A client that connects and sends nothing holds the server for at most its 2 s receive timeout; a handler
    /// that hangs is answered 503 after 5 s. Neither stops the next request.
    @Test func stalledClientsAndHandlersDoNotWedgeTheServer() throws {
        let s = try server()
        defer { s.close() }
        let start = Date()
        let silent = try exchange(s.port, "", pauseAfterSend: 0)
        #expect(silent.isEmpty)
        #expect(Date().timeIntervalSince(start) < 4)
        let slow = try exchange(s.port, "GET /slow HTTP/1.1\r\n\r\n")
        #expect(slow.hasPrefix("HTTP/1.1 503 "), "\(slow)")
        #expect(try exchange(s.port, "GET /x HTTP/1.1\r\n\r\n").hasSuffix("path=/x\n"))
    }

    /// The 2 s are for the whole request: a client sending a byte every 0.3 s is cut off at the deadline, not
    /// served for as long as it trickles, so the request queued behind it waits about 2 s.
    @Test func aTricklingClientIsCutOffAtTheRequestDeadline() throws {
        let s = try server()
        defer { s.close() }
        let slow = try connectTo(s.port)
        defer { close(slow) }
        let bytes = Array("GET /trickle HTTP/1.1\r\nX: 1234567890\r\n".utf8)
        let trickler = Thread {
            for b in bytes {
                var one = b
                if send(slow, &one, 1, Int32(MSG_NOSIGNAL)) != 1 { return }
                usleep(300_000)
            }
        }
        trickler.start()
        usleep(100_000)
        let start = Date()
        let next = try exchange(s.port, "GET /next HTTP/1.1\r\n\r\n")
        let waited = Date().timeIntervalSince(start)
        #expect(next.hasSuffix("path=/next\n"), "\(next)")
        #expect(waited > 1.2 && waited < 3.5, "waited \(waited) s behind the trickling client")
        // The trickler was answered nothing: the server closed its connection.
        var buf = [UInt8](repeating: 0, count: 64)
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(slow, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        #expect(buf.withUnsafeMutableBytes { recv(slow, $0.baseAddress, $0.count, 0) } <= 0)
    }

    @Test func addressesAreCheckedAndBusyPortsRefused() throws {
        #expect(try HTTPServer.parse("9100") == ("127.0.0.1", 9100))
        #expect(try HTTPServer.parse(":9100") == ("127.0.0.1", 9100))
        #expect(try HTTPServer.parse("0.0.0.0:80") == ("0.0.0.0", 80))
        #expect(try HTTPServer.parse("localhost:1") == ("127.0.0.1", 1))
        for bad in ["", "host:", "example.com:80", "127.0.0.1:70000", "[::1]:80"] {
            #expect(throws: TransportError.self, "\(bad)") { try HTTPServer.parse(bad) }
        }
        let s = try server()
        defer { s.close() }
        do {
            _ = try HTTPServer(address: s.address) { _ in HTTPResponse(status: 200, text: "") }
            Issue.record("a second server bound \(s.address)")
        } catch {
            #expect("\(error)".contains("Address already in use"), "\(error)")
        }
        s.close()
        s.close()  // idempotent, and it does not block: the server's thread closes the socket
        try waitFor("the port to be free again") { (try? HTTPServer(address: s.address) { _ in HTTPResponse(status: 200, text: "") }).map { $0.close(); return true } ?? false }
    }

    private func waitFor(_ what: String, _ cond: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(3)
        while Date() < deadline {
            if try cond() { return }
            usleep(50_000)
        }
        Issue.record("timed out waiting for \(what)")
    }
}

struct HTTPTestError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
