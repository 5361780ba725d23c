import ChorusAnalytics
import ChorusModel
import Foundation
import Testing

/// The response-curve model on PyMC-Marketing's example data (scripts/fetch-mmm-data.sh puts it in
/// .cache/real-data/pymc-marketing; each test is skipped with a printed reason when its file is absent). The figures
/// are in docs/campaigns.md "Response curves and the budget split".
@Suite struct MarketingMixRealDataTests {
    typealias MM = MarketingMix

    static let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".cache/real-data/pymc-marketing")

    /// Columns by header name (the files are plain CSV with a header row and no quoted commas).
    static func table(_ name: String) -> [String: [String]]? {
        let url = dir.appendingPathComponent(name)
        guard let text = try? String(contentsOf: url, encoding: .utf8) else {
            print("skipped: \(url.path) is absent (run scripts/fetch-mmm-data.sh)")
            return nil
        }
        var lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard !lines.isEmpty else { return nil }
        let header = lines.removeFirst().split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        var cols = [String: [String]]()
        for line in lines {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            for (i, h) in header.enumerated() { cols[h, default: []].append(i < fields.count ? fields[i] : "") }
        }
        cols["__header__"] = header
        return cols
    }

    static func numbers(_ t: [String: [String]], _ key: String) throws -> [Double] {
        let raw = try #require(t[key], "no column \(key)")
        return try raw.map { try #require(Double($0), "\(key): \($0) is not a number") }
    }

    /// mmm_example.csv is simulated (docs/source/notebooks/mmm/mmm_example.ipynb of pymc-labs/pymc-marketing):
    /// y = 1000 · (2 + trend + seasonality + 1.5·event_1 + 2.5·event_2 + 3·s₁ + 2·s₂ + ε), ε ~ N(0, 0.25²), with
    /// s_c = logistic_saturation(geometric_adstock(x_c, α_c, l_max = 8, normalized), λ_c), α = (0.4, 0.2),
    /// λ = (4, 3), logistic_saturation(x, λ) = (1 − e^{−λx}) / (1 + e^{−λx}). The true contribution of channel c in
    /// the data's units is 1000·β_c·s_c[t], summed over the weeks.
    @Test func pymcExampleContributionsAndROAS() throws {
        guard let t = Self.table("mmm_example.csv") else { return }
        let y = try Self.numbers(t, "y"), x1 = try Self.numbers(t, "x1"), x2 = try Self.numbers(t, "x2")
        let doy = try Self.numbers(t, "dayofyear")
        func adstock(_ x: [Double], _ a: Double) -> [Double] {
            let w = (0..<8).map { pow(a, Double($0)) }
            let s = w.reduce(0, +)
            return x.indices.map { t in (0..<8).reduce(0.0) { t - $1 >= 0 ? $0 + w[$1] / s * x[t - $1] : $0 } }
        }
        func logistic(_ x: Double, _ lam: Double) -> Double { (1 - exp(-lam * x)) / (1 + exp(-lam * x)) }
        let truth = [adstock(x1, 0.4).map { 3000 * logistic($0, 4) }.reduce(0, +),
                     adstock(x2, 0.2).map { 2000 * logistic($0, 3) }.reduce(0, +)]
        let spend = [x1.reduce(0, +), x2.reduce(0, +)]

        // Channels x1, x2; controls event_1, event_2, t (the trend), and yearly Fourier terms of order 2 for the
        // seasonality the data has (PyMC-Marketing's example fits yearly_seasonality = 2 too).
        var controls = try ["event_1", "event_2", "t"].map { MM.Series($0, try Self.numbers(t, $0)) }
        for k in 1...2 {
            controls.append(MM.Series("sin\(k)", doy.map { sin(2 * .pi * Double(k) * $0 / 365.25) }))
            controls.append(MM.Series("cos\(k)", doy.map { cos(2 * .pi * Double(k) * $0 / 365.25) }))
        }
        var options = MM.FitOptions()
        options.includeTrend = false  // t is a control
        options.bootstrapReplicates = 30
        let model = try MM.fit(kpi: y, channels: [MM.Series("x1", x1), MM.Series("x2", x2)], controls: controls,
                               options: options)
        let share = model.contribution[0] / (model.contribution[0] + model.contribution[1])
        let trueShare = truth[0] / (truth[0] + truth[1])
        print(String(format: "mmm_example: R² %.3f, residual sd %.1f (true noise sd 250)", model.rSquared, model.residualSD))
        for c in 0..<2 {
            let i = model.contributionInterval[c]
            print(String(format: "  %@: α %.2f (true %.1f), contribution %.0f [80%%: %.0f, %.0f] vs true %.0f (%+.1f%%), ROAS %.0f vs true %.0f",
                         model.channels[c].name, model.channels[c].decay, [0.4, 0.2][c], model.contribution[c],
                         i.lower, i.upper, truth[c], 100 * (model.contribution[c] / truth[c] - 1), model.roas[c],
                         truth[c] / spend[c]))
        }
        print(String(format: "  x1's share of the media contribution %.1f%% vs true %.1f%%", 100 * share, 100 * trueShare))
        #expect(model.rSquared > 0.9)
        #expect(abs(share - trueShare) < 0.10, "share \(share) vs \(trueShare)")
        #expect(abs(model.contribution[1] / truth[1] - 1) < 0.10)
        #expect(abs(model.contribution[0] / truth[0] - 1) < 0.35)
        #expect(abs(model.channels[0].decay - 0.4) < 0.1 && abs(model.channels[1].decay - 0.2) < 0.1)
    }

    /// case_study_data.csv: weekly sales and ten media spends (mdsp_*). Fit on the first 156 weeks, predict the
    /// remaining 53 from their actual spend and controls; the baseline is least squares on the raw spend (no
    /// carry-over, no saturation) with the same intercept, trend and controls.
    @Test func caseStudyHoldoutAgainstALinearBaseline() throws {
        guard let t = Self.table("case_study_data.csv") else { return }
        let header = try #require(t["__header__"])
        let sales = try Self.numbers(t, "sales")
        let n = sales.count, split = 156
        #expect(n > split + 26)
        let channels = try header.filter { $0.hasPrefix("mdsp_") }.map { MM.Series($0, try Self.numbers(t, $0)) }
        let week = try Self.numbers(t, "wk_in_yr_nbr")
        var controls = try ["me_ics_all", "me_gas_dpg", "st_ct", "mrkdn_pdm"].map { MM.Series($0, try Self.numbers(t, $0)) }
        for k in 1...2 {
            controls.append(MM.Series("sin\(k)", week.map { sin(2 * .pi * Double(k) * $0 / 52.18) }))
            controls.append(MM.Series("cos\(k)", week.map { cos(2 * .pi * Double(k) * $0 / 52.18) }))
        }
        func head(_ s: MM.Series) -> MM.Series { MM.Series(s.name, Array(s.values[0..<split])) }
        var options = MM.FitOptions()
        options.bootstrapReplicates = 0
        let model = try MM.fit(kpi: Array(sales[0..<split]), channels: channels.map(head), controls: controls.map(head),
                               options: options)
        let predicted = try model.predict(spend: channels, controls: controls)
        func mape(_ p: [Double]) -> Double {
            (split..<n).reduce(0.0) { $0 + abs(p[$1] - sales[$1]) / sales[$1] } / Double(n - split) * 100
        }
        let columns = [[Double](repeating: 1, count: n), (0..<n).map(Double.init)] + controls.map(\.values)
            + channels.map(\.values)
        let linear = try Self.leastSquaresPrediction(columns: columns, y: sales, rows: split)
        let modelMAPE = mape(predicted), linearMAPE = mape(linear)
        print(String(format: "case_study: fit R² %.3f on weeks 1-%d; MAPE on weeks %d-%d: response curves %.1f%%, linear on raw spend %.1f%%",
                     model.rSquared, split, split + 1, n, modelMAPE, linearMAPE))
        for (c, curve) in model.channels.enumerated() {
            print(String(format: "  %@: α %.2f K %.3g n %.2f β %.3g, ROAS %.2f", curve.name, curve.decay,
                         curve.halfSaturation, curve.shape, curve.coefficient, model.roas[c]))
        }
        #expect(modelMAPE.isFinite && linearMAPE.isFinite)
        #expect(modelMAPE < linearMAPE)
    }

    /// Ordinary least squares on the first `rows` rows (columns scaled to unit rms, Gauss–Jordan with partial
    /// pivoting), predicting every row.
    static func leastSquaresPrediction(columns raw: [[Double]], y: [Double], rows: Int) throws -> [Double] {
        let p = raw.count
        let scale = raw.map { c in (c[0..<rows].reduce(0) { $0 + $1 * $1 } / Double(rows)).squareRoot() }
        let cols = raw.indices.map { i in raw[i].map { $0 / max(scale[i], 1e-300) } }
        var a = [[Double]](repeating: [Double](repeating: 0, count: p + 1), count: p)
        for i in 0..<p {
            for j in 0..<p { a[i][j] = (0..<rows).reduce(0) { $0 + cols[i][$1] * cols[j][$1] } }
            a[i][p] = (0..<rows).reduce(0) { $0 + cols[i][$1] * y[$1] }
        }
        for i in 0..<p {
            let pivot = (i..<p).max { abs(a[$0][i]) < abs(a[$1][i]) }!
            a.swapAt(i, pivot)
            try #require(abs(a[i][i]) > 1e-9, "singular baseline regression")
            for r in 0..<p where r != i {
                let f = a[r][i] / a[i][i]
                for c in i...p { a[r][c] -= f * a[i][c] }
            }
        }
        let beta = (0..<p).map { a[$0][p] / a[$0][$0] }
        return y.indices.map { t in (0..<p).reduce(0.0) { $0 + beta[$1] * cols[$1][t] } }
    }
}
