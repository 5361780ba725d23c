/// What a campaign's delivery reports about one user (docs/data-format.md "Campaign outcomes").
public enum OutcomeEvent: String, Sendable, CaseIterable, Codable {
    /// The user entered the campaign in an arm and segment. The delivery system logs it for both arms: for the
    /// treatment when the user is first targeted, for the holdout when the user would have been. It defines who is
    /// in the experiment (the denominators and the sample-ratio check).
    case assigned
    case impression
    case click
    /// A conversion, with its value in `value`.
    case conversion
}

/// One campaign outcome record (an `outcomes*` ingest file).
///
/// Identity: (user, campaign, version, event, channel, ts, id). Two records with the same identity are two
/// versions of one record (the last ingested wins); `identityKey` is that identity as the bytes of the stored key
/// id. The record is placed by its user id, like the user's interactions, so a user's outcomes and activity are in
/// one partition.
public struct OutcomeRecord: Sendable, Equatable, Codable {
    public var campaign: String
    /// The plan version that was delivered (≥ 1).
    public var version: UInt32
    /// `treatment` or `holdout`.
    public var arm: String
    /// The plan's segment; required on `assigned`, nil elsewhere means "the assignment's".
    public var segment: Int?
    public var user: String
    public var event: OutcomeEvent
    /// The channel; required on impressions and clicks.
    public var channel: String
    /// Unix seconds (UTC).
    public var ts: Int64
    /// A conversion's value (≥ 0); 0 on the other events.
    public var value: Double
    /// How many such events the line stands for (≥ 1).
    public var count: UInt32
    /// The source's own event id; "" when it has none.
    public var id: String

    public init(campaign: String, version: UInt32, arm: String, segment: Int? = nil, user: String, event: OutcomeEvent,
                channel: String = "", ts: Int64, value: Double = 0, count: UInt32 = 1, id: String = "") {
        self.campaign = campaign; self.version = version; self.arm = arm; self.segment = segment; self.user = user
        self.event = event; self.channel = channel; self.ts = ts; self.value = value; self.count = count; self.id = id
    }

    /// The identity joined by 0x00: user, campaign, version, event, channel, ts, id. It is the stored key id.
    public var identityKey: String {
        [user, campaign, String(version), event.rawValue, channel, String(ts), id].joined(separator: "\u{0}")
    }
}

/// What the campaign plans on the coordinator allow outcome and campaign spend records to name: per campaign id and
/// plan version, the chosen segments and the channels. Built by the ingest client from the plan documents, it turns
/// an outcome for an unknown campaign, version, arm, segment or channel into a reject with its reason.
public struct CampaignCatalog: Sendable, Equatable {
    public struct Version: Sendable, Equatable {
        public var segments: Set<Int>
        public var channels: Set<String>
        public init(segments: Set<Int>, channels: Set<String>) { self.segments = segments; self.channels = channels }
    }

    /// Campaign id → version → what it allows.
    public var campaigns: [String: [UInt32: Version]]

    public init(campaigns: [String: [UInt32: Version]] = [:]) { self.campaigns = campaigns }

    /// Why a record cannot be taken, or nil when it can. Business-as-usual spend (no campaign) is always taken.
    public func problem(with record: Record) -> String? {
        switch record {
        case let .outcome(o):
            return problem(campaign: o.campaign, version: o.version, arm: o.arm, segment: o.segment, channel: o.channel,
                           armRequired: true)
        case let .spend(s) where !s.campaign.isEmpty:
            let segment: Int?
            if s.segment.isEmpty { segment = nil } else if let g = Int(s.segment) { segment = g } else {
                return "segment '\(s.segment.prefix(40))' of campaign '\(s.campaign.prefix(60))' is not a segment number"
            }
            return problem(campaign: s.campaign, version: s.version, arm: s.arm, segment: segment, channel: s.channel,
                           armRequired: false)
        default:
            return nil
        }
    }

    /// A campaign's spend may leave the arm out (its treatment's spend); an outcome names its arm.
    func problem(campaign: String, version: UInt32, arm: String, segment: Int?, channel: String,
                 armRequired: Bool) -> String? {
        let name = String(campaign.prefix(60))
        guard let versions = campaigns[campaign] else {
            return "unknown campaign '\(name)': no plan has that id (chorus campaign list)"
        }
        if version == 0 { return "campaign '\(name)' needs its plan version (field 'version')" }
        guard let v = versions[version] else {
            let known = versions.keys.sorted().map(String.init).joined(separator: ", ")
            return "campaign '\(name)' has no plan version \(version) (versions: \(known))"
        }
        if !arm.isEmpty || armRequired {
            guard SpendRecord.arms.contains(arm) else {
                return "unknown arm '\(arm.prefix(40))' of campaign '\(name)' (treatment or holdout)"
            }
        }
        if let segment, !v.segments.contains(segment) {
            let known = v.segments.sorted().map(String.init).joined(separator: ", ")
            return "campaign '\(name)' v\(version) has no segment \(segment) (its segments: \(known))"
        }
        if !channel.isEmpty, !v.channels.contains(channel) {
            let known = v.channels.sorted().joined(separator: ", ")
            return "campaign '\(name)' v\(version) does not run on channel '\(channel.prefix(40))' (its channels: \(known))"
        }
        return nil
    }
}
