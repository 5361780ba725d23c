import ChorusModel
import SwiftProtobuf

/// Conversions between domain records and their wire form. Domain code never passes generated types around.
public enum Wire {
    public static let protocolVersion: UInt32 = 1

    public static func kind(_ k: InteractionKind) -> Chorus_V1_InteractionType {
        Chorus_V1_InteractionType(rawValue: k.rawValue) ?? .unspecified
    }

    public static func kind(_ t: Chorus_V1_InteractionType) -> InteractionKind? {
        InteractionKind(rawValue: t.rawValue)
    }

    public static func encode(_ r: UserRecord) -> Chorus_V1_User {
        var m = Chorus_V1_User()
        m.id = r.id; m.channel = r.channel; m.country = r.country; m.language = r.language
        m.ageBand = r.ageBand; m.createdAt = r.createdAt; m.name = r.name
        return m
    }

    public static func decode(_ m: Chorus_V1_User) -> UserRecord {
        UserRecord(id: m.id, channel: m.channel, country: m.country, language: m.language, ageBand: m.ageBand,
                   createdAt: m.createdAt, name: m.name)
    }

    public static func encode(_ r: ContentRecord) -> Chorus_V1_Content {
        var m = Chorus_V1_Content()
        m.id = r.id; m.authorID = r.authorId; m.channel = r.channel; m.mediaType = r.mediaType
        m.topics = r.topics; m.hashtags = r.hashtags; m.createdAt = r.createdAt; m.text = r.text
        return m
    }

    public static func decode(_ m: Chorus_V1_Content) -> ContentRecord {
        ContentRecord(id: m.id, authorId: m.authorID, channel: m.channel, mediaType: m.mediaType, topics: m.topics,
                      hashtags: m.hashtags, createdAt: m.createdAt, text: m.text)
    }

    public static func encode(_ r: InteractionRecord) -> Chorus_V1_Interaction {
        var m = Chorus_V1_Interaction()
        m.id = r.id; m.userID = r.userId; m.contentID = r.contentId; m.type = kind(r.kind)
        m.channel = r.channel; m.ts = r.ts; m.text = r.text; m.value = r.value
        return m
    }

    public static func decode(_ m: Chorus_V1_Interaction) -> InteractionRecord? {
        guard let k = kind(m.type) else { return nil }
        return InteractionRecord(id: m.id, userId: m.userID, contentId: m.contentID, kind: k, channel: m.channel,
                                 ts: m.ts, text: m.text, value: m.value)
    }

    public static func encode(_ r: FollowRecord) -> Chorus_V1_Follow {
        var m = Chorus_V1_Follow()
        m.followerID = r.followerId; m.followeeID = r.followeeId; m.channel = r.channel; m.ts = r.ts
        return m
    }

    public static func decode(_ m: Chorus_V1_Follow) -> FollowRecord {
        FollowRecord(followerId: m.followerID, followeeId: m.followeeID, channel: m.channel, ts: m.ts)
    }

    public static func encode(_ r: SpendRecord) -> Chorus_V1_Spend {
        var m = Chorus_V1_Spend()
        m.channel = r.channel; m.date = r.date; m.period = r.period == .week ? .week : .day; m.spend = r.spend
        m.currency = r.currency; m.impressions = r.impressions; m.clicks = r.clicks; m.conversions = r.conversions
        m.revenue = r.revenue; m.campaign = r.campaign; m.arm = r.arm; m.segment = r.segment; m.version = r.version
        return m
    }

    public static func encode(_ r: OutcomeRecord) -> Chorus_V1_Outcome {
        var m = Chorus_V1_Outcome()
        m.campaign = r.campaign; m.version = r.version; m.arm = r.arm; m.user = r.user; m.event = r.event.rawValue
        if let g = r.segment { m.segment = Int32(clamping: g); m.hasSegment_p = true }
        m.channel = r.channel; m.ts = r.ts; m.value = r.value; m.count = r.count; m.id = r.id
        return m
    }

    /// Nil when the event is not one of `OutcomeEvent`.
    public static func decode(_ m: Chorus_V1_Outcome) -> OutcomeRecord? {
        guard let event = OutcomeEvent(rawValue: m.event) else { return nil }
        return OutcomeRecord(campaign: m.campaign, version: m.version, arm: m.arm,
                             segment: m.hasSegment_p ? Int(m.segment) : nil, user: m.user, event: event,
                             channel: m.channel, ts: m.ts, value: m.value, count: max(1, m.count), id: m.id)
    }

    /// Nil when the period is not day or week.
    public static func decode(_ m: Chorus_V1_Spend) -> SpendRecord? {
        let period: SpendPeriod
        switch m.period {
        case .day: period = .day
        case .week: period = .week
        default: return nil
        }
        return SpendRecord(channel: m.channel, date: m.date, period: period, spend: m.spend, currency: m.currency,
                           impressions: m.impressions, clicks: m.clicks, conversions: m.conversions,
                           revenue: m.revenue, campaign: m.campaign, arm: m.arm, segment: m.segment, version: m.version)
    }

    /// The stored copies of one record: each (partition, role, key id, value, counted).
    /// Users, content and spend get one copy; interactions and follows get one on each side, the first one counted.
    /// A spend record's key id and placement key is its `identityKey` (channel, date, period, campaign, arm and
    /// segment joined by 0x00). An outcome is placed by its user id, its key id is its `identityKey`.
    public static func puts(for record: Record, placement: Placement) throws -> [Chorus_V1_Put] {
        func put(_ id: String, _ role: Chorus_V1_PutRole, _ keyId: [UInt8], _ value: [UInt8], _ counted: Bool)
            -> Chorus_V1_Put {
            var p = Chorus_V1_Put()
            p.partition = placement.partition(of: id)
            p.role = role
            p.keyID = Data(keyId)
            p.value = Data(value)
            p.counted = counted
            return p
        }
        func join(_ a: String, _ b: String) -> [UInt8] { Array(a.utf8) + [0] + Array(b.utf8) }
        switch record {
        case let .user(u):
            let v: [UInt8] = try encode(u).serializedBytes()
            return [put(u.id, .user, Array(u.id.utf8), v, true)]
        case let .content(c):
            let v: [UInt8] = try encode(c).serializedBytes()
            return [put(c.id, .content, Array(c.id.utf8), v, true)]
        case let .interaction(i):
            let v: [UInt8] = try encode(i).serializedBytes()
            return [put(i.userId, .interactionByUser, join(i.userId, i.id), v, true),
                    put(i.contentId, .interactionByContent, join(i.contentId, i.id), v, false)]
        case let .follow(f):
            let v: [UInt8] = try encode(f).serializedBytes()
            return [put(f.followerId, .followOut, join(f.followerId, f.followeeId), v, true),
                    put(f.followeeId, .followIn, join(f.followeeId, f.followerId), v, false)]
        case let .spend(s):
            let v: [UInt8] = try encode(s).serializedBytes()
            let key = s.identityKey
            return [put(key, .spend, Array(key.utf8), v, true)]
        case let .outcome(o):
            let v: [UInt8] = try encode(o).serializedBytes()
            return [put(o.user, .outcome, Array(o.identityKey.utf8), v, true)]
        }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
