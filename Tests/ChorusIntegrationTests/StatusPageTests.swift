import Foundation
import Testing

/// The coordinator's status page (`--http`), loaded by headless Chromium from a running cluster while a worker
/// drains: the page's script fetches /api/status and draws the drain (the node's state, its alert, the moves).
@Suite(.serialized) struct StatusPageTests {
    static let browser = CampaignReportBrowserTests.browser

    @Test(.enabled(if: browser != nil, CampaignReportBrowserTests.skipReason))
    func theStatusPageShowsADrainInARealBrowser() throws {
        // A slow move throttle keeps the drain in flight while the browser looks.
        let c = try TestCluster(workers: 3, partitions: 16, extraArgs: ["--http", "127.0.0.1:0", "--move-rate-mib", "0.05"])
        defer { c.shutdown() }
        try c.ingestGenerated(users: 600, seed: 3)
        let job = try chorus(["job", "submit", "features", "--wait", "--coordinator", c.address], timeout: 300)
        #expect(job.status == 0, "\(job.stderr)")
        let address = try c.coordinator.httpAddress()

        // The JSON the page reads.
        let api = try run("/usr/bin/curl", ["-sf", "http://\(address)/api/status"])
        #expect(api.status == 0)
        let doc = (try? JSONSerialization.jsonObject(with: Data(api.stdout.utf8))) as? [String: Any] ?? [:]
        #expect(((doc["status"] as? [String: Any])?["nodes"] as? [Any])?.count == 3, "\(api.stdout.prefix(500))")
        #expect(((doc["map"] as? [String: Any])?["assignments"] as? [Any])?.count == 16)
        let page = try run("/usr/bin/curl", ["-sf", "http://\(address)/"])
        #expect(page.stdout.hasPrefix("<!doctype html>"))
        #expect(!page.stdout.contains("src=\"http") && !page.stdout.contains("href=\"http"), "no external assets")

        let drain = try chorus(["node", "drain", "w3", "--coordinator", c.address])
        #expect(drain.status == 0, "\(drain.stderr)")
        try waitUntil("a drain move in flight", seconds: 20) {
            ((try c.status())["moves"] as? [[String: Any]] ?? []).contains { $0["reason"] as? String == "drain" }
        }

        let dir = NSTemporaryDirectory() + "chorus-status-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                     "--virtual-time-budget=4000"]
        let dom = try run(Self.browser!, flags + ["--user-data-dir=\(dir)/p1", "--dump-dom", "http://\(address)/"], timeout: 120)
        #expect(dom.status == 0, "\(dom.stderr)")
        let html = dom.stdout
        // Drawn by the script from /api/status, not present in the page as served.
        #expect(html.contains("w3 is draining"), "the drain's alert")
        #expect(html.contains(#"<span class="badge b-move">draining</span>"#), "w3's state in the nodes table")
        #expect(html.contains("<td>drain</td>"), "a drain move in the moves table")
        #expect(html.components(separatedBy: "title=\"partition ").count - 1 == 16, "one cell per partition")
        #expect(html.contains("cell c-moving"), "the partitions being copied are marked")
        #expect(html.contains(#"<td>features</td><td><span class="badge b-ok">succeeded</span>"#), "the job")
        #expect(html.contains(#"<div id="err" style="display: none;"></div>"#), "drawn, with no fetch error shown")

        // The screenshot docs/operations.md shows is taken the same way (CHORUS_STATUS_SCREENSHOT=path keeps it).
        let png = ProcessInfo.processInfo.environment["CHORUS_STATUS_SCREENSHOT"] ?? dir + "/status.png"
        let shot = try run(Self.browser!, flags + ["--user-data-dir=\(dir)/p2", "--screenshot=\(png)",
                                                   "--window-size=1400,1000", "http://\(address)/"], timeout: 120)
        #expect(shot.status == 0, "\(shot.stderr)")
        let size = (try? FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
        #expect(size > 20_000, "a drawn page, not a blank one: \(size) bytes")
    }
}
