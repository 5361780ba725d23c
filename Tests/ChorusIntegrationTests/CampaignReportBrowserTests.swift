import Foundation
import Testing

/// `chorus campaign report` in a real browser: headless Chromium (Debian's `chromium`, installed by
/// scripts/install-deps.sh) renders the page to a PNG, and the PNG is decoded (Tests/Fixtures/png_stats.py, standard
/// library only) to check that the charts are drawn: the fill colours of the bars, the heatmap and the curves are
/// there, over many pixels, not a blank page. The pages come from the fixture plans via `--from-json`, so no cluster
/// is needed.
@Suite(.serialized) struct CampaignReportBrowserTests {
    static let browser: String? = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
        .first { FileManager.default.isExecutableFile(atPath: $0) }
    static let fixtures = Binary.root + "/Tests/Fixtures"
    static let skipReason: Comment = "chromium is not installed (scripts/install-deps.sh installs it): the report is not rendered in a browser"

    struct Stats {
        var width = 0, height = 0, distinct = 0, nonBackground = 0, rowsDrawn = 0
        var counts: [String: Int] = [:]
    }

    /// Renders the fixture to HTML with the binary, then to a PNG with Chromium; the PNG's statistics for these colours.
    static func render(_ fixture: String, colours: [String], dir: String, width: Int = 1280, height: Int = 4000) throws -> (html: String, png: String, stats: Stats) {
        let html = dir + "/" + fixture.replacingOccurrences(of: ".json", with: ".html")
        let r = try chorus(["campaign", "report", "--from-json", fixtures + "/" + fixture, "--out", html, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let out = r.json
        #expect(out["path"] as? String == html)
        let size = (try? FileManager.default.attributesOfItem(atPath: html)[.size] as? Int) ?? -1
        #expect((out["bytes"] as? NSNumber)?.intValue == size && size > 10_000, "bytes \(out["bytes"] ?? "?"), file \(size)")

        let png = html.replacingOccurrences(of: ".html", with: ".png")
        // As root (CI) Chromium needs --no-sandbox; the profile goes to the test's directory.
        let shot = try run(browser!, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                                      "--user-data-dir=\(dir)/profile", "--screenshot=\(png)", "--window-size=\(width),\(height)",
                                      "file://" + html], timeout: 120)
        #expect(shot.status == 0 && FileManager.default.fileExists(atPath: png), "chromium: \(shot.status)\n\(shot.stderr)")
        let py = try run("/usr/bin/env", ["python3", fixtures + "/png_stats.py", png] + colours, timeout: 120)
        #expect(py.status == 0, "png_stats.py: \(py.stderr)")
        let o = (try? JSONSerialization.jsonObject(with: Data(py.stdout.utf8))) as? [String: Any] ?? [:]
        func i(_ k: String) -> Int { (o[k] as? NSNumber)?.intValue ?? 0 }
        let counts = (o["counts"] as? [String: Any] ?? [:]).mapValues { ($0 as? NSNumber)?.intValue ?? 0 }
        return (html, png, Stats(width: i("width"), height: i("height"), distinct: i("distinct"), nonBackground: i("non_background"),
                                 rowsDrawn: i("rows_drawn"), counts: counts))
    }

    static func tempDir() throws -> String {
        let dir = NSTemporaryDirectory() + "chorus-report-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    @Test(.enabled(if: browser != nil, skipReason)) func theSamplePlanRendersWithItsChartsDrawn() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Chosen and other segments' bars, the busiest heatmap cell, an empty cell, spend bars (free and at a
        // limit), and the "not available" box of the curves and the forecast.
        let colours = ["0f766e", "cbd5e1", "1d4ed8", "f1f5f9", "2563eb", "b45309", "f9fafb"]
        let (_, _, s) = try Self.render("campaign-plan.json", colours: colours, dir: dir)
        #expect(s.width == 1280 && s.height == 4000)
        #expect(s.distinct > 200, "\(s.distinct) colours: the page looks blank")
        #expect(s.rowsDrawn > 2000, "\(s.rowsDrawn) rows drawn of \(s.height)")
        // A bar is 18 px high and up to 520 px long (the two chosen: ~15,000 px), a heatmap cell 32 × 24 px, a spend bar
        // 22 px high; without the charts (svg.chart hidden) all of these but the "not available" boxes count 0.
        for (c, least) in [("0f766e", 10000), ("cbd5e1", 1000), ("1d4ed8", 300), ("f1f5f9", 100 * 700), ("2563eb", 3 * 5000),
                           ("b45309", 2000), ("f9fafb", 2 * 10000)] {
            #expect((s.counts[c] ?? 0) >= least, "#\(c): \(s.counts[c] ?? 0) pixels, expected at least \(least)")
        }
    }

    @Test(.enabled(if: browser != nil, skipReason)) func theCurvesVariantRendersItsCurvesAndForecast() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The curves' interval bands, the forecast's band, and the chosen spend's marker.
        let colours = ["ccfbf1", "bfdbfe", "dc2626", "1d4ed8"]
        let (html, _, s) = try Self.render("campaign-plan-curves.json", colours: colours, dir: dir, height: 6000)
        let page = try String(contentsOfFile: html, encoding: .utf8)
        #expect(page.contains("class=\"chart curve\"") && !page.contains("not available"))
        #expect(s.distinct > 200)
        for (c, least) in [("ccfbf1", 5 * 2000), ("bfdbfe", 5000), ("dc2626", 5 * 100)] {
            #expect((s.counts[c] ?? 0) >= least, "#\(c): \(s.counts[c] ?? 0) pixels, expected at least \(least)")
        }
    }

    /// Chromium's parser keeps every chart as an SVG element with its size (escaped data cannot break the markup):
    /// its DOM after loading the page, with `--dump-dom`.
    @Test(.enabled(if: browser != nil, skipReason)) func everyChartIsAnSVGElementOfChromiumsDOM() throws {
        let dir = try Self.tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let html = dir + "/r.html"
        let r = try chorus(["campaign", "report", "--from-json", Self.fixtures + "/campaign-plan-curves.json", "--out", html])
        #expect(r.status == 0 && r.stdout == html + "\n", "\(r.stdout)\(r.stderr)")
        let dom = try run(Self.browser!, ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                           "--user-data-dir=\(dir)/profile", "--dump-dom", "file://" + html], timeout: 120)
        #expect(dom.status == 0, "\(dom.stderr)")
        // audience bars, heatmap, spend, five curves, forecast
        #expect(dom.stdout.components(separatedBy: "<svg class=\"chart").count - 1 == 9)
        let sizes = try NSRegularExpression(pattern: #"<svg class="chart [a-z]+" width="(\d+)" height="(\d+)""#)
        let found = sizes.matches(in: dom.stdout, range: NSRange(dom.stdout.startIndex..., in: dom.stdout))
        #expect(found.count == 9)
        for m in found {
            let w = Int(dom.stdout[Range(m.range(at: 1), in: dom.stdout)!]) ?? 0, h = Int(dom.stdout[Range(m.range(at: 2), in: dom.stdout)!]) ?? 0
            #expect(w >= 300 && h >= 100, "a chart of \(w) × \(h)")
        }
    }
}
