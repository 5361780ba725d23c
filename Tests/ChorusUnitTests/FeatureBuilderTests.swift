import ChorusAnalytics
import ChorusModel
import ChorusWire
import Foundation
import SwiftProtobuf
import Testing

/// The features job's fast path (raw protobuf fields, interned catalog, reusable builders, hand-written JSON)
/// against the definitions it replaces: `FeatureMath`, SwiftProtobuf decoding and `JSONEncoder`.
@Suite struct FeatureBuilderTests {
    struct SplitMix { var s: UInt64
        mutating func next() -> UInt64 { s &+= 0x9E37_79B9_7F4A_7C15; return StableHash.avalanche(s) }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    static let channels = ["x", "weibo", "instagram", "tiktok", "", "un/known \"q\"", "ümlaut", "Zed", "new\nline"]
    static let t0: Int64 = 1_756_684_800

    /// A catalog with repeated topics, an empty-channel user, a duplicate id (the later one wins) and odd bytes.
    func catalog(_ r: inout SplitMix) -> FeatureCatalog {
        var c = FeatureCatalog()
        let topics = ["sports", "music", "tech", "food", "travel", "news", "ü-ß", "tab\there"]
        for i in 0..<60 {
            c.contents["c\(i)"] = .init(topics: (0..<r.below(4)).map { _ in topics[r.below(topics.count)] },
                                        hashtags: (0..<r.below(3)).map { _ in "#h\(r.below(30))" })
        }
        for i in 0..<40 {
            c.users["u\(i)"] = .init(channel: Self.channels[r.below(Self.channels.count)],
                                     country: ["US", "CN", "", "DE"][r.below(4)])
        }
        return c
    }

    func interactions(_ r: inout SplitMix, user: String?, content: String?, count: Int) -> [InteractionRecord] {
        (0..<count).map { i in
            InteractionRecord(id: "i\(i)", userId: user ?? "u\(r.below(50))", contentId: content ?? "c\(r.below(70))",
                              kind: InteractionKind(rawValue: 1 + r.below(7))!,
                              channel: Self.channels[r.below(Self.channels.count)],
                              ts: Self.t0 - 86400 * 3 + Int64(r.below(86400 * 40)), text: i % 3 == 0 ? "hi" : "",
                              value: i % 5 == 0 ? 2.5 : 0)
        }
    }

    /// Feeds records to a builder the way the job does: through their stored protobuf bytes.
    func withFields(_ it: InteractionRecord, _ body: (InteractionFields) throws -> Void) throws {
        let bytes: [UInt8] = try Wire.encode(it).serializedBytes()
        try bytes.withUnsafeBytes { try body(try InteractionFields(parsing: $0)) }
    }

    @Test func userBuilderEqualsFeatureMath() throws {
        var r = SplitMix(s: 7)
        let cat = catalog(&r)
        var builder = UserFeatureBuilder(index: FeatureIndex(cat))
        for u in 0..<60 {  // the builder is reused: every user must start clean
            let id = "u\(u)"
            let its = interactions(&r, user: id, content: nil, count: r.below(25))
            for it in its {
                try withFields(it) { f in
                    builder.add(kind: f.kind!, channel: f.channel, ts: f.ts, content: f.contentID)
                }
            }
            let rec = u % 4 == 0 ? nil : UserRecord(id: id, channel: "x", country: "US", language: "en", ageBand: "18-24")
            let got = builder.finish(userId: id, user: rec, followers: u, following: 2 * u, asOf: Self.t0 + 50 * 86400)
            let want = FeatureMath.userFeatures(userId: id, user: rec, interactions: its, followers: u, following: 2 * u,
                                                catalog: cat, asOf: Self.t0 + 50 * 86400)
            #expect(got == want, "user \(id)")
        }
    }

    @Test func contentBuilderEqualsFeatureMath() throws {
        var r = SplitMix(s: 11)
        let cat = catalog(&r)
        var builder = ContentFeatureBuilder(index: FeatureIndex(cat))
        for c in 0..<80 {
            let id = "c\(c)"
            let its = interactions(&r, user: nil, content: id, count: r.below(40))
            for it in its { try withFields(it) { builder.add(kind: $0.kind!, user: $0.userID) } }
            let weight = builder.interestWeight
            let rec = c % 5 == 0 ? nil : ContentRecord(id: id, authorId: "u1", channel: "x", mediaType: "video")
            let got = builder.finish(contentId: id, content: rec)
            #expect(got == FeatureMath.contentFeatures(contentId: id, content: rec, interactions: its, catalog: cat),
                    "content \(id)")
            #expect(weight == its.reduce(0) { $0 + $1.kind.interestWeight })
        }
    }

    @Test func jsonBytesEqualJSONEncoder() throws {
        var r = SplitMix(s: 3)
        let cat = catalog(&r)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        var j = JSONBytes()
        for u in 0..<40 {
            var f = FeatureMath.userFeatures(userId: "u\(u)\u{1}/é\"", user: nil,
                                             interactions: interactions(&r, user: "u\(u)", content: nil, count: r.below(30)),
                                             followers: 0, following: 1, catalog: cat, asOf: Self.t0 + Int64(u) * 9999)
            if u == 1 { f.engagementRate = -0.0; f.recencyDays = 1e21; f.frequency = 1.0e-7 }
            if u == 2 { f.asOf = -42; f.recencyDays = -3.25 }
            // The hand-written integer printer at its edges.
            if u == 3 { f.asOf = .min; f.firstTs = .max; f.lastTs = -9; f.followers = 10; f.following = 99; f.engagements = -100 }
            if u == 4 { f.asOf = 1_000_000_000_000_000_000; f.activeHours[0] = -1; f.weekdays[6] = Int.max }
            j.removeAll()
            f.writeJSON(&j)
            let mine = String(decoding: j.bytes, as: UTF8.self), foundation = String(decoding: try encoder.encode(f), as: UTF8.self)
            #expect(mine == foundation, "\(mine)\n\(foundation)")
            #expect(try JSONDecoder().decode(UserFeatures.self, from: Data(j.bytes)) == f)
        }
        for c in 0..<20 {
            let f = FeatureMath.contentFeatures(contentId: "c\(c)", content: nil,
                                                interactions: interactions(&r, user: nil, content: "c\(c)", count: r.below(30)),
                                                catalog: cat)
            j.removeAll()
            f.writeJSON(&j)
            #expect(String(decoding: j.bytes, as: UTF8.self) == String(decoding: try encoder.encode(f), as: UTF8.self))
        }
    }

    @Test func interactionFieldsMatchProtobuf() throws {
        var m = Chorus_V1_Interaction()
        m.id = "i1"; m.userID = "u9"; m.contentID = "c/7"; m.type = .share; m.channel = "tiktok"; m.ts = -5
        m.text = String(repeating: "long comment ", count: 40); m.value = 3.5
        var bytes: [UInt8] = try m.serializedBytes()
        // An unknown varint field 20, a fixed32 field 21 and a repeated user_id (the last one wins).
        bytes += [0xA0, 0x01, 0x96, 0x01, 0xAD, 0x01, 1, 2, 3, 4, 0x12, 0x02, 0x75, 0x31]
        let decoded = try Chorus_V1_Interaction(serializedBytes: bytes)
        try bytes.withUnsafeBytes { b in
            let f = try InteractionFields(parsing: b)
            #expect(String(decoding: f.userID, as: UTF8.self) == decoded.userID)
            #expect(String(decoding: f.contentID, as: UTF8.self) == decoded.contentID)
            #expect(String(decoding: f.channel, as: UTF8.self) == decoded.channel)
            #expect(f.ts == decoded.ts && f.kind == .share)
        }
        // Truncations throw, as the generated decoder does; they never read past the buffer.
        for cut in 1..<bytes.count {
            let prefix = Array(bytes[..<cut])
            let generatedThrows = (try? Chorus_V1_Interaction(serializedBytes: prefix)) == nil
            let fieldsThrows = prefix.withUnsafeBytes { (try? InteractionFields(parsing: $0)) == nil }
            if generatedThrows { #expect(fieldsThrows, "cut at \(cut)") }
        }
        // An unknown interaction type is kept as a number, and has no kind.
        var odd = Chorus_V1_Interaction(); odd.type = .UNRECOGNIZED(99)
        let oddBytes: [UInt8] = try odd.serializedBytes()
        let oddKind = try oddBytes.withUnsafeBytes { try InteractionFields(parsing: $0).kind }
        #expect(oddKind == nil)
    }

    @Test func idTableInternsAndGrows() {
        var t = IdTable()
        for i in 0..<5000 { #expect(t.intern("id-\(i)") == i) }
        for i in stride(from: 0, to: 5000, by: 7) { #expect(t.index(of: "id-\(i)") == i) }
        #expect(t.index(of: "id-5000") == nil)
        #expect(t.intern("") == 5000 && t.index(of: "") == 5000)
        #expect(t.key(1234) == "id-1234")
    }
}
