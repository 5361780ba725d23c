/// The kinds of interaction Chorus understands.
public enum InteractionKind: Int, Sendable, CaseIterable, Codable, Comparable {
    case view = 1, like, comment, share, click, conversion
    /// An explicit rating (stars in `value`), e.g. MovieLens.
    case rating

    public var name: String {
        switch self {
        case .view: return "view"
        case .like: return "like"
        case .comment: return "comment"
        case .share: return "share"
        case .click: return "click"
        case .conversion: return "conversion"
        case .rating: return "rating"
        }
    }

    public init?(name: String) {
        switch name {
        case "view": self = .view
        case "like": self = .like
        case "comment": self = .comment
        case "share": self = .share
        case "click": self = .click
        case "conversion": self = .conversion
        case "rating": self = .rating
        default: return nil
        }
    }

    /// Engagement = anything but a view.
    public var isEngagement: Bool { self != .view }

    /// Weight of one interaction of this kind toward a topic or hashtag interest (documented in docs/architecture.md).
    public var interestWeight: Double {
        switch self {
        case .view: return 1
        case .like: return 2
        case .comment: return 3
        case .share: return 4
        case .click: return 2
        case .conversion: return 5
        case .rating: return 3
        }
    }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// The record kinds of the ingest format.
public enum RecordKind: String, Sendable, CaseIterable, Codable {
    case users, content, interactions, follows
    /// Channel spend and outcomes per day or week (`SpendRecord`).
    case spend
    /// A campaign's per-user assignments, impressions, clicks and conversions (`OutcomeRecord`).
    case outcomes
}

public struct UserRecord: Sendable, Equatable, Codable {
    public var id: String
    public var channel: String
    public var country: String
    public var language: String
    public var ageBand: String
    public var createdAt: Int64
    public var name: String

    public init(id: String, channel: String, country: String = "", language: String = "", ageBand: String = "",
                createdAt: Int64 = 0, name: String = "") {
        self.id = id; self.channel = channel; self.country = country; self.language = language
        self.ageBand = ageBand; self.createdAt = createdAt; self.name = name
    }
}

public struct ContentRecord: Sendable, Equatable, Codable {
    public var id: String
    public var authorId: String
    public var channel: String
    public var mediaType: String
    public var topics: [String]
    public var hashtags: [String]
    public var createdAt: Int64
    public var text: String

    public init(id: String, authorId: String, channel: String, mediaType: String = "", topics: [String] = [],
                hashtags: [String] = [], createdAt: Int64 = 0, text: String = "") {
        self.id = id; self.authorId = authorId; self.channel = channel; self.mediaType = mediaType
        self.topics = topics; self.hashtags = hashtags; self.createdAt = createdAt; self.text = text
    }
}

public struct InteractionRecord: Sendable, Equatable, Codable {
    public var id: String
    public var userId: String
    public var contentId: String
    public var kind: InteractionKind
    public var channel: String
    public var ts: Int64
    public var text: String
    public var value: Double

    public init(id: String, userId: String, contentId: String, kind: InteractionKind, channel: String, ts: Int64,
                text: String = "", value: Double = 0) {
        self.id = id; self.userId = userId; self.contentId = contentId; self.kind = kind
        self.channel = channel; self.ts = ts; self.text = text; self.value = value
    }
}

public struct FollowRecord: Sendable, Equatable, Codable {
    public var followerId: String
    public var followeeId: String
    public var channel: String
    public var ts: Int64

    public init(followerId: String, followeeId: String, channel: String, ts: Int64 = 0) {
        self.followerId = followerId; self.followeeId = followeeId; self.channel = channel; self.ts = ts
    }
}

/// One parsed, valid record of any kind.
public enum Record: Sendable, Equatable {
    case user(UserRecord)
    case content(ContentRecord)
    case interaction(InteractionRecord)
    case follow(FollowRecord)
    case spend(SpendRecord)
    case outcome(OutcomeRecord)
}
