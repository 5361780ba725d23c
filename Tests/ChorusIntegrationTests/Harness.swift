import ChorusTransport
import Foundation
import Synchronization
import Testing

/// Finds the built `chorus` binary: $CHORUS_BIN, or the package's .build/{debug,release}.
enum Binary {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static var chorus: String {
        if let p = ProcessInfo.processInfo.environment["CHORUS_BIN"] { return p }
        for c in [".build/debug/chorus", ".build/release/chorus"] where FileManager.default.isExecutableFile(atPath: root + "/" + c) {
            return root + "/" + c
        }
        return root + "/.build/debug/chorus"
    }
}

/// Throwaway CurveZMQ keys for every cluster this test process starts, as `chorus local` makes them: security is
/// on in the tested path. Children inherit CHORUS_KEYS (servers pick `coordinator` and `worker`) and
/// CHORUS_KEY_NAME=admin (client commands).
enum TestKeys {
    static let dir: String = {
        let dir = NSTemporaryDirectory() + "chorus-keys-" + UUID().uuidString
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Binary.chorus)
        p.arguments = ["keys", "init", "--out", dir]
        p.standardOutput = FileHandle.nullDevice
        try? p.run()
        p.waitUntilExit()
        setenv("CHORUS_KEYS", dir, 1)
        setenv("CHORUS_KEY_NAME", "admin", 1)
        return dir
    }()

    static func ensure() { _ = dir }

    /// Makes another principal's key pair in the test keys directory (the servers let it in after a reload).
    static func generate(name: String, role: String, dir: String = dir, file: String? = nil) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: Binary.chorus)
        p.arguments = ["keys", "generate", "--name", name, "--role", role, "--out", dir] + (file.map { ["--file", $0] } ?? [])
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        if p.terminationStatus != 0 { throw HarnessError("keys generate \(name) failed") }
    }

    /// A key of a certificate file: `public-key` or `secret-key`, as 32 bytes.
    static func key(_ name: String, secret: Bool = false, dir: String = dir) throws -> [UInt8] {
        let file = dir + "/" + name + (secret ? ".key_secret" : ".key")
        let text = try String(contentsOfFile: file, encoding: .utf8)
        let field = secret ? "secret-key" : "public-key"
        for line in text.split(separator: "\n") {
            let t = line.trimmingCharacters(in: .whitespaces)
            guard t.hasPrefix(field) else { continue }
            let value = t.split(separator: "\"").dropFirst().first.map(String.init) ?? ""
            if let k = z85Key(value) { return k }
        }
        throw HarnessError("no \(field) in \(file)")
    }

    /// CURVE settings for an in-process client with key `name` dialling the server with key `server`.
    static func client(_ name: String = "admin", server: String) throws -> CurveClient {
        CurveClient(serverKey: try key(server), publicKey: try key(name), secretKey: try key(name, secret: true))
    }
}

/// Output of a finished command.
struct Result {
    var status: Int32
    var stdout: String
    var stderr: String
    var seconds: Double
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(stdout.utf8))) as? [String: Any] ?? [:]
    }
}

/// Runs `chorus ARGS...` to completion (with a hard time limit).
@discardableResult
func chorus(_ args: [String], timeout: Double = 120) throws -> Result {
    try run(Binary.chorus, args, timeout: timeout)
}

func run(_ exe: String, _ args: [String], timeout: Double = 120) throws -> Result {
    TestKeys.ensure()
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let dir = NSTemporaryDirectory() + "chorus-run-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    FileManager.default.createFile(atPath: dir + "/out", contents: nil)
    FileManager.default.createFile(atPath: dir + "/err", contents: nil)
    p.standardOutput = FileHandle(forWritingAtPath: dir + "/out")
    p.standardError = FileHandle(forWritingAtPath: dir + "/err")
    p.standardInput = FileHandle.nullDevice
    let start = Date()
    try p.run()
    while p.isRunning {
        if Date().timeIntervalSince(start) > timeout {
            p.terminate()
            Issue.record("command timed out after \(timeout) s: chorus \(args.joined(separator: " "))")
            break
        }
        usleep(20_000)
    }
    p.waitUntilExit()
    return Result(status: p.terminationStatus,
                  stdout: (try? String(contentsOfFile: dir + "/out", encoding: .utf8)) ?? "",
                  stderr: (try? String(contentsOfFile: dir + "/err", encoding: .utf8)) ?? "",
                  seconds: Date().timeIntervalSince(start))
}

/// A long-running chorus process (coordinator or worker). Killed when the test ends.
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let logPath: String
    let outPath: String
    /// The endpoint the process printed ("... listening on tcp://...").
    private(set) var endpoint = ""

    init(_ args: [String], logDir: String, name: String) throws {
        logPath = logDir + "/\(name).log"
        outPath = logDir + "/\(name).out"
        TestKeys.ensure()
        FileManager.default.createFile(atPath: logPath, contents: nil)
        FileManager.default.createFile(atPath: outPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Binary.chorus)
        process.arguments = args
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline {
            if let out = try? String(contentsOfFile: outPath, encoding: .utf8),
               let r = out.range(of: "listening on ") {
                endpoint = String(out[r.upperBound...].prefix { !$0.isWhitespace })
                if !endpoint.isEmpty { return }
            }
            if !process.isRunning { break }
            usleep(20_000)
        }
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        throw HarnessError("\(name) did not start: \(log)")
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    func log() -> String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(5)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        process.waitUntilExit()
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

extension ServerProcess {
    /// The address its `--http` server bound, as it printed it ("http endpoints on HOST:PORT ...").
    func httpAddress() throws -> String {
        let out = try String(contentsOfFile: outPath, encoding: .utf8)
        guard let r = out.range(of: "http endpoints on ") else { throw HarnessError("no http line in \(out)") }
        return String(out[r.upperBound...].prefix { !$0.isWhitespace })
    }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A coordinator and N workers as separate OS processes on loopback.
final class TestCluster: @unchecked Sendable {
    let dir: String
    var coordinator: ServerProcess
    var workers: [ServerProcess] = []
    var address: String { coordinator.endpoint }

    init(workers n: Int, partitions: Int = 16, replication: Int = 2, extraArgs: [String] = [],
         workerArgs: [String] = []) throws {
        dir = NSTemporaryDirectory() + "chorus-it-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        coordinator = try ServerProcess(["coordinator", "--bind", "tcp://127.0.0.1:*", "--data", dir + "/coord",
                                         "--partitions", String(partitions), "--replication", String(replication)]
                                        + extraArgs, logDir: dir, name: "coordinator")
        for i in 1...n { try addWorker(i, extraArgs: workerArgs) }
        try waitUntilSettled(workers: n)
    }

    /// Waits until `n` workers are active, every partition has a live primary and (with enough workers) R copies,
    /// and no move is in flight or planned.
    func waitUntilSettled(workers n: Int, seconds: Double = 60) throws {
        try waitUntil("all workers active, every partition replicated, no moves left", seconds: seconds) {
            let s = try chorus(["cluster", "status", "--coordinator", address, "--json"]).json
            let nodes = s["nodes"] as? [[String: Any]] ?? []
            let r = s["replication_factor"] as? Int ?? 1
            return nodes.filter { ($0["state"] as? String) == "active" }.count == n
                && (s["unassigned_partitions"] as? Int) == 0
                && ((s["under_replicated"] as? [Int])?.isEmpty == true || n < r)
                && (s["moves"] as? [Any])?.isEmpty == true && (s["moves_planned"] as? Int) == 0
                && nodes.allSatisfy { ($0["partitions"] as? Int ?? 0) > 0 }
        }
    }

    func status() throws -> [String: Any] {
        try chorus(["cluster", "status", "--coordinator", address, "--json"]).json
    }

    func addWorker(_ i: Int, extraArgs: [String] = []) throws {
        workers.append(try ServerProcess(["worker", "--coordinator", address, "--bind", "tcp://127.0.0.1:*",
                                          "--data", dir + "/w\(i)", "--name", "w\(i)", "--cores", "2"] + extraArgs,
                                         logDir: dir, name: "w\(i)"))
    }

    /// Kills worker `i` (1-based) with SIGKILL and starts it again on the same data dir (same node id).
    func restartWorker(_ i: Int, after delay: Double = 0) throws {
        workers[i - 1].kill9()
        if delay > 0 { usleep(UInt32(delay * 1_000_000)) }
        workers[i - 1] = try ServerProcess(["worker", "--coordinator", address, "--bind", "tcp://127.0.0.1:*",
                                            "--data", dir + "/w\(i)", "--name", "w\(i)", "--cores", "2"],
                                           logDir: dir, name: "w\(i)-restarted")
    }

    /// Restarts the coordinator on the same data dir and port.
    func restartCoordinator(kill9: Bool) throws {
        let addr = address
        if kill9 { coordinator.kill9() } else { coordinator.stop() }
        coordinator = try ServerProcess(["coordinator", "--bind", addr, "--data", dir + "/coord"], logDir: dir,
                                        name: "coordinator-2")
    }

    func logs() -> String {
        ([coordinator] + workers).map { "---- \($0.logPath)\n" + $0.log().suffix(4000) }.joined(separator: "\n")
    }

    func shutdown() {
        workers.forEach { $0.stop() }
        coordinator.stop()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

func waitUntil(_ what: String, seconds: Double, _ cond: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if (try? cond()) == true { return }
        usleep(100_000)
    }
    throw HarnessError("timed out after \(seconds) s waiting for: \(what)")
}

extension TestCluster {
    /// Writes a synthetic network with `chorus generate` into DIR/gen and returns the paths of its four files
    /// (users, content, follows, interactions), for tests that ingest them.
    func generate(users: Int, seed: Int, segments: Int = 0) throws -> (dir: String, files: [String]) {
        let gen = dir + "/gen"
        let g = try chorus(["generate", "--users", String(users), "--seed", String(seed), "--out", gen,
                            "--segments", String(segments)])
        guard g.status == 0 else { throw HarnessError("generate failed: \(g.stderr)") }
        return (gen, ["users.jsonl", "content.jsonl", "follows.jsonl", "interactions.jsonl"].map { gen + "/" + $0 })
    }

    /// `generate`, then one ingest of the four files; throws with the ingest's stderr when it fails.
    @discardableResult
    func ingestGenerated(users: Int, seed: Int, segments: Int = 0, timeout: Double = 120) throws -> (dir: String, files: [String]) {
        let g = try generate(users: users, seed: seed, segments: segments)
        let r = try chorus(["ingest", "--coordinator", address, "--json"] + g.files, timeout: timeout)
        guard r.status == 0 else { throw HarnessError("ingest failed (\(r.status)): \(r.stderr)\n\(logs())") }
        return g
    }
}

/// The lines of a `profile export` JSONL file by user id.
func exportedProfiles(_ path: String) throws -> [String: String] {
    var out: [String: String] = [:]
    for line in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n") {
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
        out[obj["user_id"] as? String ?? ""] = String(line)
    }
    return out
}
