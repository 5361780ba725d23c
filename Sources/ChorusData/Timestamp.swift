import ChorusModel

/// Timestamp parsing for ingest: unix seconds, integer or fractional (numbers whose magnitude is above 10^11 are
/// read as milliseconds; fractions of a second are dropped), or ISO 8601 / RFC 3339 text such as
/// `2025-03-01T14:05:09Z`, `2025-03-01T14:05:09.250+08:00` or `2025-03-01 14:05:09` (UTC).
/// Accepted range: 1990-01-01 to 2100-01-01 (MovieLens ratings start in 1995). Every input outside it, however
/// large, negative or malformed, is answered with `nil` (or a typed reason), never a trap.
public enum Timestamp {
    public static let minimum: Int64 = 631_152_000     // 1990-01-01T00:00:00Z
    public static let maximum: Int64 = 4_102_444_800   // 2100-01-01T00:00:00Z
    /// The accepted range as people read it, for reject reasons and docs.
    public static let rangeText = "1990-01-01 to 2100-01-01"

    /// Why a number is not a timestamp.
    public enum NumberProblem: Error, Equatable, Sendable {
        case notFinite
        case outOfRange
    }

    /// Unix seconds (or milliseconds above 10^11) as whole seconds, range-checked *before* any integer
    /// conversion: `Int64(1e30)` would trap.
    public static func checkedNumber(_ d: Double) -> Result<Int64, NumberProblem> {
        guard d.isFinite else { return .failure(.notFinite) }
        let s = abs(d) > 1e11 ? d / 1000 : d
        guard s >= Double(minimum), s < Double(maximum) + 1 else { return .failure(.outOfRange) }
        return .success(Int64(s.rounded(.down)))   // in range: cannot trap
    }

    public static func fromNumber(_ d: Double) -> Int64? {
        if case let .success(v) = checkedNumber(d) { return v }
        return nil
    }

    /// A number written as text: digits with an optional sign, fraction and exponent (`1756735509`,
    /// `1756735509.5`, `1.7567e9`). Hex floats, `nan` and `inf` are not numbers here.
    public static func numericText(_ text: String) -> Double? {
        let u = text.utf8
        guard let f = u.first, f == UInt8(ascii: "-") || f == UInt8(ascii: "+") || (f >= 0x30 && f <= 0x39)
                || f == UInt8(ascii: ".") else { return nil }
        guard u.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e")
                || $0 == UInt8(ascii: "E") || $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "-") }) else { return nil }
        // "2025-03-01" is a date, not a subtraction: a sign may only lead or follow an exponent marker.
        var prev: UInt8 = 0
        for (i, c) in u.enumerated() {
            if (c == UInt8(ascii: "-") || c == UInt8(ascii: "+")) && i > 0 && prev != UInt8(ascii: "e")
                && prev != UInt8(ascii: "E") { return nil }
            prev = c
        }
        return Double(text)
    }

    public static func parse(_ text: String) -> Int64? {
        let u = Array(text.utf8)
        if u.isEmpty { return nil }
        if let v = numericText(text) { return fromNumber(v) }
        // YYYY-MM-DD[T ]HH:MM:SS[.frac][Z|±HH:MM|±HHMM]
        func num(_ from: Int, _ len: Int) -> Int? {
            guard from + len <= u.count else { return nil }
            var v = 0
            for k in from..<(from + len) {
                let c = u[k]
                guard c >= 0x30, c <= 0x39 else { return nil }
                v = v * 10 + Int(c - 0x30)
            }
            return v
        }
        guard u.count >= 10, let y = num(0, 4), u[4] == 0x2D, let mo = num(5, 2), u[7] == 0x2D, let d = num(8, 2)
        else { return nil }
        var h = 0, mi = 0, s = 0
        var i = 10
        if u.count > 10 {
            guard u[10] == UInt8(ascii: "T") || u[10] == UInt8(ascii: " "), let hh = num(11, 2), u.count > 13,
                  u[13] == 0x3A, let mm = num(14, 2) else { return nil }
            h = hh; mi = mm; i = 16
            if i < u.count, u[i] == 0x3A {
                guard let ss = num(17, 2) else { return nil }
                s = ss; i = 19
            }
            if i < u.count, u[i] == UInt8(ascii: ".") {
                i += 1
                let st = i
                while i < u.count, u[i] >= 0x30, u[i] <= 0x39 { i += 1 }
                if i == st { return nil }
            }
        }
        var offset = 0
        if i < u.count {
            if u[i] == UInt8(ascii: "Z") || u[i] == UInt8(ascii: "z") {
                i += 1
            } else if u[i] == UInt8(ascii: "+") || u[i] == UInt8(ascii: "-") {
                let sign = u[i] == UInt8(ascii: "+") ? 1 : -1
                guard let oh = num(i + 1, 2) else { return nil }
                var om = 0
                if i + 3 < u.count, u[i + 3] == 0x3A {
                    guard let m = num(i + 4, 2) else { return nil }
                    om = m; i += 6
                } else if let m = num(i + 3, 2) {
                    om = m; i += 5
                } else {
                    i += 3
                }
                guard oh <= 14, om < 60 else { return nil }
                offset = sign * (oh * 3600 + om * 60)
            }
        }
        guard i == u.count else { return nil }
        guard (1...12).contains(mo), d >= 1, d <= daysIn(month: mo, year: y), h < 24, mi < 60, s < 61 else { return nil }
        let v = Int64(daysFromCivil(y, mo, d)) * 86400 + Int64(h * 3600 + mi * 60 + s) - Int64(offset)
        return (minimum...maximum).contains(v) ? v : nil
    }

    static func daysIn(month: Int, year: Int) -> Int { CivilDate.daysIn(month: month, year: year) }

    /// Days since 1970-01-01 of a proleptic Gregorian date.
    public static func daysFromCivil(_ y0: Int, _ m: Int, _ d: Int) -> Int { CivilDate.days(year: y0, month: m, day: d) }

    /// Formats unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
    public static func iso(_ t: Int64) -> String {
        let days = Int(t >= 0 ? t / 86400 : (t - 86399) / 86400)
        let secs = Int(t - Int64(days) * 86400)
        let (y, m, d) = CivilDate.civil(days: days)
        func p2(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(p2(m))-\(p2(d))T\(p2(secs / 3600)):\(p2(secs / 60 % 60)):\(p2(secs % 60))Z"
    }
}
