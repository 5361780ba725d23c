import ChorusModel
import ChorusWire
import Foundation

/// The coordinator's versioned documents (documents.proto; docs/architecture.md "Documents").
extension ChorusClient {
    public func putDocument(_ put: Chorus_V1_DocumentPut) async throws -> Chorus_V1_DocumentReply {
        try document(try await coordinator.call(.documentPut(put), timeout: timeout))
    }

    public func document(collection: String, id: String, version: UInt32 = 0, withHistory: Bool = false) async throws
        -> Chorus_V1_DocumentReply {
        var g = Chorus_V1_DocumentGet()
        g.collection = collection; g.id = id; g.version = version; g.withHistory = withHistory
        return try document(try await coordinator.call(.documentGet(g), timeout: timeout))
    }

    public func documents(collection: String, limit: Int = 50) async throws -> [Chorus_V1_DocumentSummary] {
        var l = Chorus_V1_DocumentListRequest()
        l.collection = collection; l.limit = UInt32(clamping: max(0, limit))
        guard case let .documentList(r) = try await coordinator.call(.documentList(l), timeout: timeout) else {
            throw ChorusError(.internal, "unexpected reply")
        }
        return r.documents
    }

    public func approveDocument(collection: String, id: String, version: UInt32, by: String, note: String = "") async throws
        -> Chorus_V1_DocumentReply {
        var a = Chorus_V1_DocumentApprove()
        a.collection = collection; a.id = id; a.version = version; a.by = by; a.note = note
        return try document(try await coordinator.call(.documentApprove(a), timeout: timeout))
    }

    public func documentEvent(collection: String, id: String, version: UInt32, who: String, action: String, detail: String)
        async throws -> Chorus_V1_DocumentReply {
        var e = Chorus_V1_DocumentEvent()
        e.collection = collection; e.id = id; e.version = version; e.who = who; e.action = action; e.detail = detail
        return try document(try await coordinator.call(.documentEvent(e), timeout: timeout))
    }

    private func document(_ body: ResponseBody) throws -> Chorus_V1_DocumentReply {
        guard case let .document(d) = body else { throw ChorusError(.internal, "unexpected reply") }
        return d
    }

    /// What the stored campaign plans (collection "campaigns") allow outcome and campaign spend records to name: every
    /// version's chosen segments (`measurement.segments`) and channels (`brief.channels`). Ingest checks each such
    /// record against it (`IngestOptions.campaigns`). The newest `limit` campaigns are read.
    public func campaignCatalog(limit: Int = 500) async throws -> CampaignCatalog {
        var catalog = CampaignCatalog()
        for summary in try await documents(collection: "campaigns", limit: limit) {
            var versions: [UInt32: CampaignCatalog.Version] = [:]
            for v in 1...max(1, summary.latest.version) {
                let d = try await document(collection: "campaigns", id: summary.id, version: v)
                guard let o = try? JSONSerialization.jsonObject(with: d.body) as? [String: Any] else { continue }
                let plan = o["plan"] as? [String: Any] ?? o
                let segments = ((plan["measurement"] as? [String: Any])?["segments"] as? [[String: Any]] ?? [])
                    .compactMap { ($0["segment"] as? NSNumber)?.intValue }
                let channels = (plan["brief"] as? [String: Any])?["channels"] as? [String] ?? []
                versions[v] = .init(segments: Set(segments), channels: Set(channels))
            }
            catalog.campaigns[summary.id] = versions
        }
        return catalog
    }
}
