import ChorusTransport
import Foundation
import Glibc
import Testing

@Suite(.serialized) struct ClientErrorTests {
    @Test func unreachableCoordinatorFailsFastWithAClearMessage() throws {
        // Nothing listens on port 9 (discard) on loopback.
        let r = try chorus(["cluster", "status", "--coordinator", "tcp://127.0.0.1:9"], timeout: 30)
        #expect(r.status == 69)
        #expect(r.seconds < 5)
        #expect(r.stderr.contains("no reply from the coordinator at tcp://127.0.0.1:9"))
        #expect(r.stderr.contains("hint:"))
        let ingest = try chorus(["ingest", "--coordinator", "tcp://127.0.0.1:9", "--json", "/etc/hostname",
                                 "--kind", "users"], timeout: 30)
        #expect(ingest.status == 69 && ingest.seconds < 5)
    }

    @Test func unknownFlagsGiveUsageHelp() throws {
        let r = try chorus(["job", "submit", "features", "--frobnicate"])
        #expect(r.status == 64)
        #expect(r.stderr.contains("Unknown option '--frobnicate'"))
        #expect(r.stderr.contains("Usage: chorus job submit"))
        let top = try chorus(["--help"])
        #expect(top.status == 0 && top.stdout.contains("SUBCOMMANDS") && top.stdout.contains("ingest"))
        let missing = try chorus(["ingest", "--coordinator", "tcp://127.0.0.1:9", "/no/such/file.jsonl"])
        #expect(missing.status == 66 && missing.stderr.contains("input file not found"))
    }

    @Test func garbageBytesDoNotCrashCoordinatorOrWorker() async throws {
        let cluster = try TestCluster(workers: 1, partitions: 4)
        defer { cluster.shutdown() }
        let targets = [cluster.coordinator, cluster.workers[0]]
        for target in targets {
            // 1. Raw TCP garbage (not even the ZeroMQ handshake).
            let port = UInt16(target.endpoint.split(separator: ":").last!)!
            for size in [1, 7, 64, 4096, 1 << 20] {
                sendRawTCP(port: port, bytes: (0..<size).map { _ in UInt8.random(in: 0...255) })
            }
            // 2. Well-framed ZeroMQ messages whose payload is not a protobuf Request, or a truncated one,
            //    or a multi-frame message: before the CURVE handshake (a plaintext client, refused at the
            //    handshake) and after it (a client with a key the server lets in).
            let serverKey = target === cluster.coordinator ? "coordinator" : "worker"
            for curve in [nil, try TestKeys.client(server: serverKey)] {
                let client = try DealerClient(connect: target.endpoint, curve: curve) { _ in nil }
                for size in [0, 1, 3, 100, 10_000, 1 << 20] {
                    _ = try? await client.request((0..<size).map { _ in UInt8.random(in: 0...255) }, correlationId: 1,
                                                  timeout: .milliseconds(100))
                }
                _ = try? await client.request([0x08, 0x01, 0x10], correlationId: 2, timeout: .milliseconds(100))
                client.post(frames: [[1, 2, 3], [], [4, 5, 6]])
                client.close()
            }
            #expect(target.isRunning, "\(target.logPath) died:\n\(target.log())")
        }
        // Both still serve real requests.
        let s = try chorus(["cluster", "status", "--coordinator", cluster.address, "--json"])
        #expect(s.status == 0)
        let nodes = s.json["nodes"] as? [[String: Any]] ?? []
        #expect(nodes.first?["state"] as? String == "active")
        let gen = cluster.dir + "/gen"
        #expect(try chorus(["generate", "--users", "20", "--seed", "1", "--out", gen]).status == 0)
        let ing = try chorus(["ingest", "--coordinator", cluster.address, "--json", gen + "/users.jsonl"])
        #expect(ing.status == 0 && ing.json["stored"] as? Int == 20)
    }
}

func sendRawTCP(port: UInt16, bytes: [UInt8]) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = port.bigEndian
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard ok == 0 else { return }
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    usleep(20_000)
}
