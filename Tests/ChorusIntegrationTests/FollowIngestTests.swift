import Foundation
import Synchronization
import Testing

/// A `chorus ingest --follow` process whose output goes to files; it can be killed with SIGKILL or stopped with
/// SIGTERM (it then finishes the batch in flight, checkpoints and prints its report).
final class Follower: @unchecked Sendable {
    let process = Process()
    let outPath: String
    let errPath: String

    init(_ args: [String], dir: String, name: String) throws {
        outPath = dir + "/\(name).out"
        errPath = dir + "/\(name).err"
        FileManager.default.createFile(atPath: outPath, contents: nil)
        FileManager.default.createFile(atPath: errPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: Binary.chorus)
        process.arguments = ["ingest", "--follow", "--json", "--no-progress"] + args
        process.standardOutput = FileHandle(forWritingAtPath: outPath)
        process.standardError = FileHandle(forWritingAtPath: errPath)
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var stderr: String { (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "" }
    var report: [String: Any] {
        let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
        return (try? JSONSerialization.jsonObject(with: Data(out.utf8))) as? [String: Any] ?? [:]
    }

    func kill9() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    /// Waits for the process to exit by itself (`--idle-exit`); its exit status.
    func wait(seconds: Double) throws -> Int32 {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning && Date() < deadline { usleep(100_000) }
        if process.isRunning {
            kill9()
            throw HarnessError("the follower did not exit within \(seconds) s: \(stderr.suffix(3000))")
        }
        return process.terminationStatus
    }

    func terminate() -> Int32 {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    deinit { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
}

/// Appends interaction lines to `dir/interactions-1.jsonl` at a steady rate, and rotates the file once half of them
/// are written (renamed to `interactions-1.rotated`, which the follower's glob still matches; the writer goes on in a
/// new `interactions-1.jsonl`).
final class InteractionWriter: @unchecked Sendable {
    private let finished = DispatchSemaphore(value: 0)
    private let written = Atomic<Int>(0)

    init(dir: String, total: Int, seconds: Double, users: [String], contents: [String]) {
        Thread.detachNewThread { [self] in
            let path = dir + "/interactions-1.jsonl"
            FileManager.default.createFile(atPath: path, contents: nil)
            var handle = FileHandle(forWritingAtPath: path)!
            let ticks = Int(seconds * 10)
            let perTick = (total + ticks - 1) / ticks
            let start = Date()
            var n = 0
            var rotated = false
            let types = ["view", "view", "like", "comment", "share", "click"]
            for tick in 0..<ticks where n < total {
                var text = ""
                for _ in 0..<min(perTick, total - n) {
                    let ts = 1_757_000_000 + n * 7
                    text += #"{"interaction_id":"s\#(n)","user_id":"\#(users[(n * 7919) % users.count])","content_id":"\#(contents[(n * 104_729) % contents.count])","type":"\#(types[n % types.count])","channel":"instagram","ts":\#(ts)}"# + "\n"
                    n += 1
                }
                try? handle.write(contentsOf: Data(text.utf8))
                written.store(n, ordering: .relaxed)
                if !rotated && n >= total / 2 {
                    rotated = true
                    try? handle.close()
                    _ = rename(path, dir + "/interactions-1.rotated")
                    FileManager.default.createFile(atPath: path, contents: nil)
                    handle = FileHandle(forWritingAtPath: path)!
                }
                let next = start.addingTimeInterval(Double(tick + 1) / 10)
                let wait = next.timeIntervalSinceNow
                if wait > 0 { usleep(UInt32(wait * 1_000_000)) }
            }
            try? handle.close()
            finished.signal()
        }
    }

    var count: Int { written.load(ordering: .relaxed) }
    func wait() { finished.wait() }
}

@Suite(.serialized) struct FollowIngestTests {
    static let asOf = "1759104000"

    func ids(_ path: String, key: String) throws -> [String] {
        try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").map { line in
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] ?? [:]
            return obj[key] as? String ?? ""
        }
    }

    /// The issue's test: a writer appends 200 k interactions over a minute (rotating its file halfway) while a
    /// worker is killed with SIGKILL and the follower is killed with SIGKILL and started again; incremental features
    /// jobs run on a schedule meanwhile. At the end every interaction is stored exactly once, and the incremental
    /// profiles equal a full recompute.
    @Test func twoHundredThousandInteractionsExactlyOnceThroughKills() throws {
        let cluster = try TestCluster(workers: 3, partitions: 16, replication: 2)
        defer { cluster.shutdown() }
        let a = cluster.address
        let gen = try cluster.generate(users: 2000, seed: 31)
        let base = try chorus(["ingest", "--coordinator", a, "--json", gen.files[0], gen.files[1]])
        #expect(base.status == 0, "\(base.stderr)")
        let users = try ids(gen.files[0], key: "user_id")
        let contents = try ids(gen.files[1], key: "content_id")
        let first = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", Self.asOf, "--wait", "--json"],
                               timeout: 120)
        #expect(first.json["state"] as? String == "succeeded", "\(first.stderr)")

        let stream = cluster.dir + "/stream"
        try FileManager.default.createDirectory(atPath: stream, withIntermediateDirectories: true)
        let state = cluster.dir + "/follow-state.json"
        let followArgs = [stream + "/interactions-*", "--coordinator", a, "--state", state, "--batch-delay", "0.5",
                          "--features-every", "0", "--rejects", cluster.dir + "/rejects.jsonl"]
        let total = 200_000
        var follower = try Follower(followArgs, dir: cluster.dir, name: "follower-1")
        let writer = InteractionWriter(dir: stream, total: total, seconds: 60, users: users, contents: contents)
        let start = Date()
        var killedWorker = false, restartedFollower = false
        var scheduled: [String] = []
        var lastScheduled = Date()
        while Date().timeIntervalSince(start) < 62 {
            let t = Date().timeIntervalSince(start)
            if !killedWorker && t > 18 {
                cluster.workers[1].kill9()  // w2: its partitions fail over to their replicas
                killedWorker = true
            }
            if !restartedFollower && t > 33 {
                follower.kill9()
                follower = try Follower(followArgs + ["--idle-exit", "8"], dir: cluster.dir, name: "follower-2")
                restartedFollower = true
            }
            // A scheduled incremental features run every 10 s while the stream flows.
            if Date().timeIntervalSince(lastScheduled) > 10 {
                lastScheduled = Date()
                let r = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", Self.asOf, "--param",
                                    "mode=incremental", "--json"])
                if let id = r.json["id"] as? String { scheduled.append(id) }
            }
            usleep(200_000)
        }
        writer.wait()
        #expect(writer.count == total)
        let status = try follower.wait(seconds: 240)
        #expect(status == 0, "\(follower.stderr.suffix(3000))")
        let report = follower.report
        let events = (report["events"] as? [String] ?? []).joined(separator: "\n")

        // Exactly once: a full features run counts the stored interactions (the base load had none).
        var jobSeconds: [String] = []
        for id in scheduled {
            let w = try chorus(["job", "watch", id, "--coordinator", a, "--json"], timeout: 300)
            #expect(w.json["state"] as? String == "succeeded", "scheduled incremental job \(id): \(w.stdout) \(w.stderr)")
            let s = w.json["summary"] as? [String: Any] ?? [:]
            jobSeconds.append("\(w.json["seconds"] ?? "?") s for \(s["users_recomputed"] ?? "?") users")
        }
        let incremental = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", Self.asOf, "--param",
                                      "mode=incremental", "--wait", "--json"], timeout: 300)
        #expect(incremental.json["state"] as? String == "succeeded", "\(incremental.stderr)")
        let incrementalOut = cluster.dir + "/incremental.jsonl"
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", incrementalOut], timeout: 120).status == 0)
        let full = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", Self.asOf, "--wait", "--json"],
                              timeout: 300)
        #expect(full.json["state"] as? String == "succeeded", "\(full.stderr)")
        let summary = full.json["summary"] as? [String: Any] ?? [:]
        #expect(summary["interactions"] as? Int == total, "stored interactions: \(summary["interactions"] ?? "?") of \(total)")
        let fullOut = cluster.dir + "/full.jsonl"
        #expect(try chorus(["profile", "export", "--coordinator", a, "--out", fullOut], timeout: 120).status == 0)
        let inc = try exportedProfiles(incrementalOut), ref = try exportedProfiles(fullOut)
        let differing = ref.filter { inc[$0.key] != $0.value }.count
        #expect(ref.count == users.count)
        #expect(inc.count == ref.count && differing == 0, "\(differing) of \(ref.count) incremental profiles differ from a full recompute")

        // The second follower resumed from the first one's checkpoint: it read less than everything, and what it
        // sent again (read after the last checkpoint of the killed one) was counted as duplicates, not stored twice.
        let read2 = report["read"] as? Int ?? 0
        let stored2 = report["stored"] as? Int ?? 0
        let duplicates2 = report["duplicates"] as? Int ?? 0
        #expect(read2 > 0 && read2 < total, "follower 2 read \(read2)")
        #expect(stored2 + duplicates2 == read2)
        #expect(events.contains("resuming at byte"), "\(events)")
        // A later small change recomputes few profiles: incremental, not everything again.
        let small = stream + "/interactions-2.jsonl"
        let few = (0..<50).map { n in #"{"interaction_id":"late-\#(n)","user_id":"\#(users[n % 5])","content_id":"\#(contents[0])","type":"like","channel":"instagram","ts":1757900000}"# }
        FileManager.default.createFile(atPath: small, contents: Data((few.joined(separator: "\n") + "\n").utf8))
        let late = try chorus(["ingest", "--coordinator", a, "--json", small])
        #expect(late.json["stored"] as? Int == 50, "\(late.stdout) \(late.stderr)")
        let after = try chorus(["job", "submit", "features", "--coordinator", a, "--as-of", Self.asOf, "--param",
                                "mode=incremental", "--wait", "--json"], timeout: 120)
        let afterSummary = after.json["summary"] as? [String: Any] ?? [:]
        #expect((afterSummary["users_recomputed"] as? Int ?? -1) == 5, "\(afterSummary)")
        print("""
            follow: \(total) interactions appended over 60 s (rotated once), worker w2 killed at 18 s, follower \
            killed and restarted at 33 s; follower 2 read \(read2) (stored \(stored2), duplicates \(duplicates2)); \
            stored interactions \(summary["interactions"] ?? "?"); incremental profiles equal to full: \
            \(ref.count - differing)/\(ref.count); \(scheduled.count) scheduled incremental runs: \
            \(jobSeconds.joined(separator: ", "))
            """)
    }

    /// tail -F behaviour on one worker: a new file matching the glob, rotation by rename, truncation
    /// (copytruncate), a malformed line reported with file and line, a restart from the checkpoint after SIGTERM
    /// that sends nothing twice, and the incremental features job submitted by the follower.
    @Test func rotationTruncationNewFilesAndCheckpoint() throws {
        let cluster = try TestCluster(workers: 1, partitions: 4, replication: 1)
        defer { cluster.shutdown() }
        let a = cluster.address
        let dir = cluster.dir + "/in"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        func lines(_ range: Range<Int>) -> String {
            range.map { #"{"interaction_id":"r\#($0)","user_id":"u\#($0 % 9)","content_id":"c\#($0 % 4)","type":"like","channel":"x","ts":1757000000}"# }
                .joined(separator: "\n") + "\n"
        }
        func append(_ path: String, _ text: String) throws {
            if !FileManager.default.fileExists(atPath: path) { FileManager.default.createFile(atPath: path, contents: nil) }
            let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
            try h.seekToEnd()
            try h.write(contentsOf: Data(text.utf8))
            try h.close()
        }
        let state = cluster.dir + "/state.json"
        let args = ["\(dir)/interactions*", "--coordinator", a, "--state", state, "--batch-delay", "0.2",
                    "--features-every", "1", "--rejects", cluster.dir + "/rejects.jsonl"]
        let main = dir + "/interactions.jsonl"
        try append(main, lines(0..<100))
        let f1 = try Follower(args, dir: cluster.dir, name: "f1")
        usleep(1_500_000)
        try append(main, lines(100..<150) + "{not json\n")                     // growth, and a malformed line (line 151)
        usleep(1_000_000)
        _ = rename(main, dir + "/old.log")                                      // rotation out of the glob
        try append(dir + "/old.log", lines(150..<160))                          // the writer still holds the old file
        try append(main, lines(160..<200))                                      // and the new one
        try append(dir + "/interactions-b.jsonl", lines(200..<230))             // a new file that matches
        usleep(7_000_000)                                                       // the rotated file is retired after 5 s
        #expect(f1.terminate() == 0, "\(f1.stderr)")
        let r1 = f1.report
        #expect(r1["read"] as? Int == 231, "\(r1)")
        #expect(r1["stored"] as? Int == 230 && r1["rejected"] as? Int == 1, "\(r1)")
        #expect((r1["feature_runs"] as? Int ?? 0) >= 1, "\(r1)")
        let events1 = (r1["events"] as? [String] ?? []).joined(separator: "\n")
        #expect(events1.contains("rotated") && events1.contains("read to its end"), "\(events1)")
        let rejects = try String(contentsOfFile: cluster.dir + "/rejects.jsonl", encoding: .utf8)
        #expect(rejects.contains(#""file":"\#(main)","line":151"#), "\(rejects)")

        // Truncation while the follower runs again: copytruncate empties the file, then new lines come.
        let f2 = try Follower(args, dir: cluster.dir, name: "f2")
        usleep(1_500_000)
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: main))
        try h.truncate(atOffset: 0)
        try h.close()
        usleep(600_000)
        try append(main, lines(300..<320))
        usleep(1_500_000)
        #expect(f2.terminate() == 0, "\(f2.stderr)")
        let r2 = f2.report
        // Nothing from the checkpointed files is sent again: only the 20 new lines.
        #expect(r2["read"] as? Int == 20 && r2["stored"] as? Int == 20 && r2["duplicates"] as? Int == 0, "\(r2)")
        let events2 = (r2["events"] as? [String] ?? []).joined(separator: "\n")
        #expect(events2.contains("truncated"), "\(events2)")
        #expect(events2.contains("resuming at byte"), "\(events2)")

        // Two followers on one checkpoint are refused.
        let f3 = try Follower(args, dir: cluster.dir, name: "f3")
        usleep(800_000)
        let f4 = try Follower(args, dir: cluster.dir, name: "f4")
        #expect(try f4.wait(seconds: 10) == 3, "\(f4.stderr)")
        #expect(f4.stderr.contains("another `chorus ingest --follow` is using the checkpoint"), "\(f4.stderr)")
        _ = f3.terminate()

        // Every record once: the stored interactions.
        let full = try chorus(["job", "submit", "features", "--coordinator", a, "--wait", "--json"], timeout: 120)
        #expect((full.json["summary"] as? [String: Any])?["interactions"] as? Int == 250, "\(full.stdout)")
    }
}
