/// The stored JSON of profiles and content features, written by hand: the bytes `JSONEncoder` with
/// `.sortedKeys` gives for the same value (a test holds them equal), at a fraction of its cost. The generic
/// encoder took about 45% of the features job (boxing every field, sorting keys per object, dynamic casts).
public struct JSONBytes {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 1024) { bytes.reserveCapacity(capacity) }

    public mutating func removeAll() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always) mutating func raw(_ s: StaticString) {
        s.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ s: String) {
        bytes.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { u in
            // Most names need no escape: copy them whole.
            if !u.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "/") }) {
                bytes.append(contentsOf: u)
                return
            }
            for b in u { escaped(b) }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    private mutating func escaped(_ b: UInt8) {
        switch b {
        case UInt8(ascii: "\""): raw("\\\"")
        case UInt8(ascii: "\\"): raw("\\\\")
        case UInt8(ascii: "/"): raw("\\/")
        case 0x0A: raw("\\n")
        case 0x0D: raw("\\r")
        case 0x09: raw("\\t")
        case 0x08: raw("\\b")
        case 0x0C: raw("\\f")
        case 0..<0x20:
            raw("\\u00")
            let hex: StaticString = "0123456789abcdef"
            hex.withUTF8Buffer { h in
                bytes.append(h[Int(b >> 4)])
                bytes.append(h[Int(b & 0xf)])
            }
        default: bytes.append(b)
        }
    }

    /// Decimal digits written straight into the buffer (`String(v)` goes through the generic integer printer).
    mutating func int(_ v: Int64) {
        var m = v.magnitude
        if v < 0 { bytes.append(UInt8(ascii: "-")) }
        if m < 10 {
            bytes.append(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: m))
            return
        }
        // 20 digits hold any UInt64.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        withUnsafeMutableBytes(of: &digits) { buf in
            var i = 24
            while m > 0 {
                i -= 1
                buf[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: m % 10)
                m /= 10
            }
            bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: buf[i...]))
        }
    }

    @inline(__always) mutating func int(_ v: Int) { int(Int64(v)) }

    /// As Foundation writes a finite Double: its shortest round-trip description, without a trailing ".0".
    mutating func double(_ v: Double) {
        if v == v.rounded(), abs(v) < 1e15 {
            int(Int64(v))
            if v == 0, v.sign == .minus { bytes.insert(UInt8(ascii: "-"), at: bytes.count - 1) }
            return
        }
        var d = v.description
        if d.hasSuffix(".0") { d.removeLast(2) }
        bytes.append(contentsOf: d.utf8)
    }

    mutating func bool(_ v: Bool) { if v { raw("true") } else { raw("false") } }

    mutating func ints(_ a: [Int]) {
        bytes.append(UInt8(ascii: "["))
        for (i, v) in a.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            int(v)
        }
        bytes.append(UInt8(ascii: "]"))
    }

    /// An object of counts, keys sorted by their UTF-8 bytes.
    mutating func counts(_ d: [String: Int]) {
        bytes.append(UInt8(ascii: "{"))
        var first = true
        func pair(_ k: String, _ v: Int) {
            if !first { bytes.append(UInt8(ascii: ",")) }
            first = false
            string(k)
            bytes.append(UInt8(ascii: ":"))
            int(v)
        }
        if d.count == 1, let only = d.first {
            pair(only.key, only.value)
        } else if d.count > 1 {
            for (k, v) in d.sorted(by: { Self.utf8Precedes($0.key, $1.key) }) { pair(k, v) }
        }
        bytes.append(UInt8(ascii: "}"))
    }

    /// UTF-8 byte order (what `JSONEncoder`'s `.sortedKeys` uses), over contiguous bytes.
    static func utf8Precedes(_ a: String, _ b: String) -> Bool {
        var a = a, b = b
        return a.withUTF8 { x in
            b.withUTF8 { y in
                for i in 0..<min(x.count, y.count) where x[i] != y[i] { return x[i] < y[i] }
                return x.count < y.count
            }
        }
    }

    mutating func terms(_ a: [WeightedTerm]) {
        bytes.append(UInt8(ascii: "["))
        for (i, t) in a.enumerated() {
            if i > 0 { bytes.append(UInt8(ascii: ",")) }
            raw("{\"name\":"); string(t.name); raw(",\"weight\":"); double(t.weight)
            bytes.append(UInt8(ascii: "}"))
        }
        bytes.append(UInt8(ascii: "]"))
    }
}

extension UserFeatures {
    /// Appends this profile as sorted-key JSON (the stored form, read back with `JSONDecoder`).
    public func writeJSON(_ j: inout JSONBytes) {
        j.raw("{\"active_days\":"); j.int(activeDays)
        j.raw(",\"active_hours\":"); j.ints(activeHours)
        j.raw(",\"age_band\":"); j.string(ageBand)
        j.raw(",\"as_of\":"); j.int(asOf)
        j.raw(",\"channel\":"); j.string(channel)
        j.raw(",\"country\":"); j.string(country)
        j.raw(",\"counts_by_channel\":"); j.counts(countsByChannel)
        j.raw(",\"counts_by_type\":"); j.counts(countsByType)
        j.raw(",\"engagement_rate\":"); j.double(engagementRate)
        j.raw(",\"engagements\":"); j.int(engagements)
        j.raw(",\"first_ts\":"); j.int(firstTs)
        j.raw(",\"followers\":"); j.int(followers)
        j.raw(",\"following\":"); j.int(following)
        j.raw(",\"frequency\":"); j.double(frequency)
        j.raw(",\"interactions\":"); j.int(interactions)
        j.raw(",\"known_user\":"); j.bool(knownUser)
        j.raw(",\"language\":"); j.string(language)
        j.raw(",\"last_ts\":"); j.int(lastTs)
        j.raw(",\"recency_days\":"); j.double(recencyDays)
        j.raw(",\"top_hashtags\":"); j.terms(topHashtags)
        j.raw(",\"top_topics\":"); j.terms(topTopics)
        j.raw(",\"user_id\":"); j.string(userId)
        j.raw(",\"weekdays\":"); j.ints(weekdays)
        j.raw("}")
    }
}

extension ContentFeatures {
    /// Appends these content features as sorted-key JSON (the stored form).
    public func writeJSON(_ j: inout JSONBytes) {
        j.raw("{\"audience_by_channel\":"); j.counts(audienceByChannel)
        j.raw(",\"audience_by_country\":"); j.counts(audienceByCountry)
        j.raw(",\"author_id\":"); j.string(authorId)
        j.raw(",\"channel\":"); j.string(channel)
        j.raw(",\"content_id\":"); j.string(contentId)
        j.raw(",\"counts_by_type\":"); j.counts(countsByType)
        j.raw(",\"engagement_rate\":"); j.double(engagementRate)
        j.raw(",\"engagements\":"); j.int(engagements)
        j.raw(",\"impressions\":"); j.int(impressions)
        j.raw(",\"known_content\":"); j.bool(knownContent)
        j.raw(",\"media_type\":"); j.string(mediaType)
        j.raw(",\"unique_users\":"); j.int(uniqueUsers)
        j.raw("}")
    }
}
