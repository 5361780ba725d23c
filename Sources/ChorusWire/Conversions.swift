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

    /// The stored copies of one record: each (partition, role, key id, value, counted).
    /// Users and content get one copy; interactions and follows get one on each side, the first one counted.
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
        }
    }
}

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
