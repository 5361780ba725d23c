import ChorusTransport
import ChorusWire
import Foundation
import Testing

/// CurveZMQ on every socket, a deny-by-default ZAP handler, roles checked per request, and key rotation without a
/// restart (docs/security.md), on real processes with the harness's throwaway keys.
@Suite(.serialized) struct SecurityTests {
    /// A fresh key directory holding one principal's key pair and the cluster's coordinator.key.
    private func outsider(_ name: String, coordinatorKeyFrom: String = TestKeys.dir) throws -> String {
        let dir = NSTemporaryDirectory() + "chorus-outsider-" + UUID().uuidString
        try TestKeys.generate(name: name, role: "admin", dir: dir)
        try FileManager.default.copyItem(atPath: coordinatorKeyFrom + "/coordinator.key", toPath: dir + "/coordinator.key")
        return dir
    }

    @Test func unknownKeysPlaintextClientsAndAWrongServerKeyAreRefusedWithinSeconds() async throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address

        // A key the cluster never listed: refused by the ZAP handler (no handler would have let it in).
        let other = try outsider("mallory")
        defer { try? FileManager.default.removeItem(atPath: other) }
        let unknown = try chorus(["cluster", "status", "--coordinator", a, "--keys", other, "--key-name", "mallory"])
        #expect(unknown.status == 77, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("did not let this client in") && unknown.stderr.contains("refused this client's key"),
                "\(unknown.stderr)")
        #expect(unknown.seconds < 5)
        try waitUntil("the refusal in the coordinator's log", seconds: 5) {
            cluster.coordinator.log().contains("refused a connection")
        }
        // The same key, straight from this process: the transport names the refusal.
        let curve = CurveClient(serverKey: try TestKeys.key("coordinator"), publicKey: try TestKeys.key("mallory", dir: other),
                                secretKey: try TestKeys.key("mallory", secret: true, dir: other))
        let raw = try DealerClient(connect: a, curve: curve) { _ in 1 }
        defer { raw.close() }
        do {
            _ = try await raw.request([0x08, 0x01], correlationId: 1, timeout: .seconds(10))
            Issue.record("an unknown key got a reply")
        } catch let e as TransportError {
            guard case .handshake = e else { Issue.record("expected a handshake failure, got \(e)"); return }
        }

        // A plaintext client: refused at the handshake, with a message that says why.
        let plain = try chorus(["cluster", "status", "--coordinator", a, "--insecure"])
        #expect(plain.status == 77 && plain.stderr.contains("did not let this client in"), "\(plain.stderr)")
        #expect(plain.seconds < 5)

        // A known key that dials with the wrong server key (another cluster's coordinator.key).
        let elsewhere = NSTemporaryDirectory() + "chorus-elsewhere-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: elsewhere) }
        #expect(try chorus(["keys", "init", "--out", elsewhere]).status == 0)
        let mixed = NSTemporaryDirectory() + "chorus-mixed-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: mixed) }
        try FileManager.default.createDirectory(atPath: mixed, withIntermediateDirectories: true)
        for f in ["admin.key", "admin.key_secret"] { try FileManager.default.copyItem(atPath: TestKeys.dir + "/" + f, toPath: mixed + "/" + f) }
        try FileManager.default.copyItem(atPath: elsewhere + "/coordinator.key", toPath: mixed + "/coordinator.key")
        let wrongServer = try chorus(["cluster", "status", "--coordinator", a, "--keys", mixed, "--key-name", "admin"])
        #expect(wrongServer.status == 77 || wrongServer.status == 69, "\(wrongServer.stderr)")
        #expect(wrongServer.seconds < 8)

        // The cluster's own key still works, and nothing crashed.
        #expect(try chorus(["cluster", "status", "--coordinator", a]).status == 0)
        #expect(cluster.coordinator.isRunning && cluster.workers[0].isRunning)
    }

    @Test func plaintextOnlyBehindInsecure() throws {
        let dir = NSTemporaryDirectory() + "chorus-plain-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // No keys and no --insecure: the server does not start.
        let refused = try run("/usr/bin/env", ["-u", "CHORUS_KEYS", Binary.chorus, "coordinator", "--bind", "tcp://127.0.0.1:*",
                                               "--data", dir + "/refused"], timeout: 20)
        #expect(refused.status == 64 && refused.stderr.contains("no keys"), "\(refused.stderr)")
        // --insecure: it starts, says so, and logs a warning; a plaintext client works, a CURVE client does not.
        let coord = try ServerProcess(["coordinator", "--bind", "tcp://127.0.0.1:*", "--data", dir + "/c", "--insecure",
                                       "--partitions", "4", "--replication", "1"], logDir: dir, name: "coordinator")
        defer { coord.stop() }
        #expect(try String(contentsOfFile: coord.outPath, encoding: .utf8).contains("PLAINTEXT"))
        #expect(coord.log().contains("--insecure"))
        #expect(try chorus(["cluster", "status", "--coordinator", coord.endpoint, "--insecure"]).status == 0)
        let secure = try chorus(["cluster", "status", "--coordinator", coord.endpoint])
        #expect(secure.status == 77 && secure.seconds < 5, "\(secure.stderr)")
    }

    /// The access table of docs/security.md, written out again here: request field number → who may send it.
    static let everyone: Set<String> = ["worker", "admin", "operator", "analyst", "ingest"]
    static let internalOnly: Set<String> = ["worker"]
    static let reads: Set<String> = ["admin", "operator", "analyst"]
    static let operate: Set<String> = ["admin", "operator"]
    static let table: [Int: (name: String, allowed: Set<String>)] = [
        10: ("register_worker", internalOnly), 11: ("heartbeat", internalOnly), 12: ("cluster_status", everyone),
        13: ("partition_map", everyone), 14: ("write_batch", ["admin", "ingest"]), 15: ("submit_job", operate),
        16: ("job_status", reads), 17: ("job_list", reads), 18: ("job_cancel", operate), 19: ("run_task", internalOnly),
        20: ("profile_get", reads), 21: ("profile_scan", reads), 22: ("job_broadcast", internalOnly),
        23: ("job_release", internalOnly), 24: ("seal_partitions", internalOnly), 25: ("replica_write", internalOnly),
        26: ("node_admin", ["admin"]), 27: ("rebalance", ["admin"]), 28: ("copy_partition", internalOnly),
        29: ("partition_chunk", internalOnly), 30: ("map_push", internalOnly), 31: ("recommend", reads),
        32: ("similar", reads), 33: ("user_history", internalOnly), 34: ("model_list", reads), 35: ("model_get", reads),
        36: ("model_put", operate), 37: ("sentiment_query", reads), 38: ("submit_pipeline", operate),
        39: ("pipeline_status", reads), 40: ("pipeline_list", reads), 41: ("job_result", reads),
        42: ("document_put", operate), 43: ("document_get", reads), 44: ("document_list", reads),
        45: ("document_approve", operate), 46: ("document_event", operate), 47: ("partition_file", internalOnly),
        48: ("file_chunk", internalOnly), 49: ("replica_batch", internalOnly), 50: ("keys_reload", ["admin"]), 51: ("audit", ["admin"]),
    ]

    /// A request whose body is field `field` holding an empty message.
    static func request(field: Int, correlation: UInt64) throws -> Chorus_V1_Request {
        var bytes: [UInt8] = [0x08, 0x01]  // protocol_version = 1
        var tag = UInt64(field << 3 | 2)
        while tag >= 0x80 { bytes.append(UInt8(tag & 0x7F) | 0x80); tag >>= 7 }
        bytes.append(UInt8(tag))
        bytes.append(0)
        var req = try Chorus_V1_Request(serializedBytes: bytes)
        req.correlationID = correlation
        req.sender = "matrix"
        return req
    }

    @Test func everyRequestTypeWithEveryRole() async throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        let tag = UUID().uuidString.prefix(6).lowercased()
        let roles = ["worker", "admin", "operator", "analyst", "ingest"]
        for role in roles { try TestKeys.generate(name: "m-\(role)-\(tag)", role: role) }
        defer {
            for role in roles {
                for ext in [".key", ".key_secret"] { try? FileManager.default.removeItem(atPath: TestKeys.dir + "/m-\(role)-\(tag)" + ext) }
            }
        }
        let reload = try chorus(["keys", "reload", "--coordinator", cluster.address])
        #expect(reload.status == 0, "\(reload.stderr)")

        // Every field of the Request oneof has a row (a new request type needs a role rule and a row here).
        for field in 10...80 {
            let req = try Self.request(field: field, correlation: 1)
            #expect((req.body != nil) == (Self.table[field] != nil), "request field \(field): body \(String(describing: req.body))")
        }
        // The variants whose rule depends on the body.
        var cases: [(label: String, req: Chorus_V1_Request, allowed: Set<String>)] = []
        var correlation: UInt64 = 1000
        for (field, row) in Self.table.sorted(by: { $0.key < $1.key }) {
            correlation += 1
            cases.append((row.name, try Self.request(field: field, correlation: correlation), row.allowed))
        }
        func variant(_ label: String, field: Int, _ allowed: Set<String>, _ edit: (inout Chorus_V1_Request) -> Void) throws {
            correlation += 1
            var req = try Self.request(field: field, correlation: correlation)
            edit(&req)
            cases.append((label, req, allowed))
        }
        try variant("submit_job top-hashtags (read-only)", field: 15, Self.reads) { $0.submitJob.kind = "top-hashtags" }
        try variant("node_admin undrain", field: 26, ["admin", "worker"]) { $0.nodeAdmin.action = .undrain }
        try variant("node_admin drain", field: 26, ["admin", "worker"]) { $0.nodeAdmin.action = .drain }
        try variant("node_admin drain --force", field: 26, ["admin"]) { $0.nodeAdmin.action = .drain; $0.nodeAdmin.force = true }
        try variant("document_event export", field: 46, Self.reads) { $0.documentEvent.action = "export" }
        try variant("node_admin remove", field: 26, ["admin"]) { $0.nodeAdmin.action = .remove }
        try variant("keys_reload forwarded", field: 50, Self.internalOnly) { $0.keysReload.forwarded = true }

        var denied = 0
        for (server, endpoint, serverKey) in [("coordinator", cluster.address, "coordinator"),
                                              ("worker", cluster.workers[0].endpoint, "worker")] {
            for role in roles {
                let client = try DealerClient(connect: endpoint, curve: try TestKeys.client("m-\(role)-\(tag)", server: serverKey)) { b in
                    (try? Chorus_V1_Response(serializedBytes: b))?.correlationID
                }
                defer { client.close() }
                for c in cases {
                    let reply = try await client.request(try c.req.serializedBytes(), correlationId: c.req.correlationID,
                                                         timeout: .seconds(10))
                    let resp = try Chorus_V1_Response(serializedBytes: reply)
                    var refused = false
                    if case let .error(e)? = resp.body, e.code == .permissionDenied {
                        refused = true
                        #expect(e.message.contains("permission denied") && e.message.contains(role), "\(e.message)")
                    }
                    #expect(refused == !c.allowed.contains(role),
                            "\(server): \(c.label) from \(role): \(refused ? "refused" : "let through") (\(String(describing: resp.body)))")
                    if refused { denied += 1 }
                }
            }
        }
        #expect(denied > 200)
        // Refusals are logged with the principal, and both processes still serve.
        #expect(cluster.coordinator.log().contains("permission denied"))
        #expect(cluster.coordinator.isRunning && cluster.workers[0].isRunning, "\(cluster.logs())")
        #expect(try chorus(["cluster", "status", "--coordinator", cluster.address]).status == 0)
        // The CLI's exit code for a refusal.
        let refused = try chorus(["node", "drain", "worker-1", "--coordinator", cluster.address, "--key-name", "m-analyst-\(tag)"])
        #expect(refused.status == 77 && refused.stderr.contains("permission denied"), "\(refused.stderr)")

        // The audit log has the refusal under the key's principal, and the reload under the admin's; an analyst
        // may not read it.
        let log = try chorus(["audit", "--coordinator", cluster.address, "--since", "1h", "--json"])
        #expect(log.status == 0, "\(log.stderr)")
        let entries = log.json["entries"] as? [[String: Any]] ?? []
        #expect(entries.contains { $0["action"] as? String == "node drain" && $0["principal"] as? String == "m-analyst-\(tag)"
                    && $0["role"] as? String == "analyst" && $0["ok"] as? Bool == false
                    && ($0["result"] as? String ?? "").contains("permission denied") }, "\(entries)")
        #expect(entries.contains { $0["action"] as? String == "keys reload" && $0["principal"] as? String == "admin"
                    && $0["ok"] as? Bool == true }, "\(entries)")
        let table = try chorus(["audit", "--coordinator", cluster.address])
        #expect(table.status == 0 && table.stdout.contains("REFUSED") && table.stdout.contains("m-analyst-\(tag)"), "\(table.stdout)")
        #expect(try chorus(["audit", "--coordinator", cluster.address, "--key-name", "m-analyst-\(tag)"]).status == 77)
    }

    /// A whole CURVE session, captured on the wire and sent again on a new connection, is refused: the server's
    /// cookie and the session keys belong to the first connection, so the replayed request never runs.
    @Test func aCapturedSessionReplayedOnAnotherConnectionIsRefused() async throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        let port = UInt16(cluster.address.split(separator: ":").last!)!
        func reloads() throws -> Int {
            let log = try chorus(["audit", "--coordinator", cluster.address, "--json"]).json
            return (log["entries"] as? [[String: Any]] ?? []).filter { $0["action"] as? String == "keys reload" }.count
        }
        let before = try reloads()
        // An admin's `keys reload`, through a relay that records every byte the client sends.
        let relay = try RecordingRelay(to: port)
        let client = try DealerClient(connect: "tcp://127.0.0.1:\(relay.port)", curve: try TestKeys.client(server: "coordinator")) { b in
            (try? Chorus_V1_Response(serializedBytes: b))?.correlationID
        }
        var req = Chorus_V1_Request()
        req.protocolVersion = 1
        req.correlationID = 77
        req.keysReload = .init()
        let resp = try Chorus_V1_Response(serializedBytes: try await client.request(try req.serializedBytes(), correlationId: 77,
                                                                                    timeout: .seconds(10)))
        guard case .admin? = resp.body else { Issue.record("keys reload failed: \(resp)"); return }
        client.close()
        relay.stop()
        let captured = relay.clientBytes
        #expect(captured.count > 300, "captured \(captured.count) bytes")  // greeting, HELLO, INITIATE, MESSAGE
        #expect(try reloads() == before + 1)
        // Replayed whole, twice, on new connections: no reload runs again, and the coordinator keeps serving.
        for _ in 0..<2 { _ = replayTCP(port: port, bytes: captured, seconds: 1.5) }
        #expect(try reloads() == before + 1)
        #expect(cluster.coordinator.isRunning)
        #expect(try chorus(["cluster", "status", "--coordinator", cluster.address]).status == 0)
    }

    @Test func keysRotateWithoutARestart() async throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        let name = "rot-" + UUID().uuidString.prefix(6).lowercased()
        // Another client, connected for the whole test: reloads must not disturb it.
        let other = try DealerClient(connect: a, curve: try TestKeys.client(server: "coordinator")) { b in
            (try? Chorus_V1_Response(serializedBytes: b))?.correlationID
        }
        defer { other.close() }
        var n: UInt64 = 0
        func otherStillServed() async throws -> Bool {
            n += 1
            var req = Chorus_V1_Request()
            req.protocolVersion = 1
            req.correlationID = 5000 + n
            req.partitionMap = .init()
            let resp = try Chorus_V1_Response(serializedBytes: try await other.request(try req.serializedBytes(),
                                                                                         correlationId: req.correlationID,
                                                                                         timeout: .seconds(5)))
            if case .partitionMap? = resp.body { return true }
            return false
        }
        #expect(try await otherStillServed())

        // A new key is refused until the allow-list is reloaded, then let in: no restart.
        try TestKeys.generate(name: name, role: "analyst")
        defer { for ext in [".key", ".key_secret"] { try? FileManager.default.removeItem(atPath: TestKeys.dir + "/" + name + ext) } }
        #expect(try chorus(["cluster", "status", "--coordinator", a, "--key-name", name]).status == 77)
        // A long-lived client refused now (as a worker started before its key was listed) ...
        let late = try DealerClient(connect: a, curve: try TestKeys.client(name, server: "coordinator")) { b in
            (try? Chorus_V1_Response(serializedBytes: b))?.correlationID
        }
        defer { late.close() }
        var mapRequest = Chorus_V1_Request()
        mapRequest.protocolVersion = 1
        mapRequest.partitionMap = .init()
        func lateRequest(_ id: UInt64) async throws -> Bool {
            mapRequest.correlationID = id
            let r = try Chorus_V1_Response(serializedBytes: try await late.request(try mapRequest.serializedBytes(),
                                                                                correlationId: id, timeout: .seconds(5)))
            if case .partitionMap? = r.body { return true }
            return false
        }
        do {
            _ = try await lateRequest(9001)
            Issue.record("a key not yet listed was let in")
        } catch let e as TransportError {
            guard case .handshake = e else { Issue.record("expected a refusal, got \(e)"); return }
        }
        let reload = try chorus(["keys", "reload", "--coordinator", a, "--json"])
        #expect(reload.status == 0, "\(reload.stderr)")
        #expect((reload.json["result"] as? String ?? "").contains("coordinator: "), "\(reload.stdout)")
        #expect(try chorus(["cluster", "status", "--coordinator", a, "--key-name", name]).status == 0)
        #expect(try await otherStillServed())
        // ... is let in after the reload without being made again: it re-dials after a refusal (1 s, doubling).
        var admitted = false
        for i in 0..<40 where !admitted {
            admitted = (try? await lateRequest(9100 + UInt64(i))) == true
            if !admitted { try await Task.sleep(for: .milliseconds(500)) }
        }
        #expect(admitted, "the refused client never got in after the reload")

        // A second key of the same principal (a rotation in progress): both are let in, as the same principal.
        try TestKeys.generate(name: name, role: "analyst", file: name + "-2")
        defer { for ext in [".key", ".key_secret"] { try? FileManager.default.removeItem(atPath: TestKeys.dir + "/" + name + "-2" + ext) } }
        #expect(try chorus(["keys", "reload", "--coordinator", a]).status == 0)
        let second = try chorus(["node", "drain", "worker-1", "--coordinator", a, "--key-name", name + "-2"])
        #expect(second.status == 77 && second.stderr.contains("key '\(name)' has role analyst"), "\(second.stderr)")
        #expect(try chorus(["cluster", "status", "--coordinator", a, "--key-name", name]).status == 0)

        // The old key revoked with SIGHUP instead: its new connections fail, the principal's new key and the other
        // client are not disturbed.
        try FileManager.default.removeItem(atPath: TestKeys.dir + "/" + name + ".key")
        for p in [cluster.coordinator] + cluster.workers { kill(p.pid, SIGHUP) }
        try waitUntil("the SIGHUP reload in the logs", seconds: 10) {
            ([cluster.coordinator] + cluster.workers).allSatisfy { $0.log().contains("trigger=SIGHUP") }
        }
        #expect(try chorus(["cluster", "status", "--coordinator", a, "--key-name", name]).status == 77)
        #expect(try chorus(["cluster", "status", "--coordinator", a, "--key-name", name + "-2"]).status == 0)
        #expect(try await otherStillServed())
        #expect(cluster.coordinator.isRunning && cluster.workers[0].isRunning)
        // A broken allow-list keeps the old one in force, and says so.
        try "not a certificate".write(toFile: TestKeys.dir + "/broken-\(name).key", atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: TestKeys.dir + "/broken-\(name).key") }
        let bad = try chorus(["keys", "reload", "--coordinator", a])
        #expect(bad.status != 0 && bad.stderr.contains("broken-\(name).key"), "\(bad.stderr)")
        #expect(try chorus(["cluster", "status", "--coordinator", a]).status == 0)
    }
}
