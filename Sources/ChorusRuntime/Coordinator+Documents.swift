import ChorusModel
import ChorusStorage
import ChorusWire
import Foundation

/// Keys of versioned documents in the coordinator's store (docs/architecture.md "Documents"):
/// - "docm/<collection>/<id>/<version, 8 digits>" → DocumentVersion (metadata; approval is written here)
/// - "docv/<collection>/<id>/<version, 8 digits>" → the version's body (written once, never rewritten)
/// - "doca/<collection>/<id>/<sequence, 12 digits>" → AuditEntry (append-only)
/// Metadata and bodies are apart so listing a collection reads no bodies.
enum DocumentKeys {
    static func meta(_ c: String, _ id: String, _ v: UInt32) -> [UInt8] { Array("docm/\(c)/\(id)/\(String(format: "%08u", v))".utf8) }
    static func body(_ c: String, _ id: String, _ v: UInt32) -> [UInt8] { Array("docv/\(c)/\(id)/\(String(format: "%08u", v))".utf8) }
    static func audit(_ c: String, _ id: String, _ seq: Int) -> [UInt8] { Array("doca/\(c)/\(id)/\(String(format: "%012d", seq))".utf8) }
    static func metaPrefix(_ c: String, _ id: String) -> [UInt8] { Array("docm/\(c)/\(id)/".utf8) }
    static func auditPrefix(_ c: String, _ id: String) -> [UInt8] { Array("doca/\(c)/\(id)/".utf8) }
    static func collectionPrefix(_ c: String) -> [UInt8] { Array("docm/\(c)/".utf8) }
}

extension Coordinator {
    // MARK: - Versioned documents. Every read-modify-write runs as one job of the serial store queue, so two
    // writers cannot both append version N+1, and an approval cannot slip between a read and an edit.

    func putDocument(_ r: Chorus_V1_DocumentPut) async throws -> Chorus_V1_DocumentReply {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let reply = try await storeQueue.run { () throws -> Chorus_V1_DocumentReply in
            let versions = try self.documentVersions(r.collection, r.id)
            let latest = versions.last?.version ?? 0
            guard latest == r.expectedVersion else {
                throw ChorusError(.conflict,
                                  latest == 0
                                      ? "document \(r.collection)/\(r.id) does not exist (the writer expected version \(r.expectedVersion))"
                                      : "document \(r.collection)/\(r.id) is at version \(latest), not \(r.expectedVersion): someone changed it since you read it",
                                  hint: r.expectedVersion == 0 ? "choose another id" : "read version \(latest), then make your change again")
            }
            var m = Chorus_V1_DocumentVersion()
            m.version = latest + 1
            m.createdAtMs = now
            m.author = r.author; m.action = r.action; m.summary = r.summary; m.jobID = r.jobID
            m.bytes = UInt64(r.body.count)
            m.title = r.title.isEmpty ? (versions.last?.title ?? "") : r.title
            var entry = Chorus_V1_AuditEntry()
            entry.atMs = now; entry.who = r.author; entry.action = r.action; entry.version = m.version; entry.detail = r.summary
            var batch = WriteBatch()
            batch.put(DocumentKeys.body(r.collection, r.id, m.version), [UInt8](r.body))
            batch.put(DocumentKeys.meta(r.collection, r.id, m.version), try m.serializedBytes())
            batch.put(DocumentKeys.audit(r.collection, r.id, try self.nextAuditSequence(r.collection, r.id)), try entry.serializedBytes())
            do { try self.store.write(batch, sync: true) } catch { throw ChorusError(.storage, "cannot store the document: \(error)") }
            var reply = Chorus_V1_DocumentReply()
            reply.collection = r.collection; reply.id = r.id; reply.meta = m; reply.latestVersion = m.version
            return reply
        }
        logger.info("document stored", metadata: ["document": "\(r.collection)/\(r.id)", "version": "\(reply.meta.version)",
                                                  "author": "\(r.author)", "action": "\(r.action)"])
        return reply
    }

    func getDocument(_ r: Chorus_V1_DocumentGet) async throws -> Chorus_V1_DocumentReply {
        try await storeQueue.run { () throws -> Chorus_V1_DocumentReply in
            let versions = try self.documentVersions(r.collection, r.id)
            guard let latest = versions.last else {
                throw ChorusError(.notFound, "no document \(r.collection)/\(r.id)", hint: "`chorus \(r.collection == "campaigns" ? "campaign" : r.collection) list` shows them")
            }
            let want = r.version == 0 ? latest.version : r.version
            guard let meta = versions.first(where: { $0.version == want }),
                  let body = try self.store.get(DocumentKeys.body(r.collection, r.id, want)) else {
                throw ChorusError(.notFound, "document \(r.collection)/\(r.id) has no version \(want) (latest \(latest.version))")
            }
            var reply = Chorus_V1_DocumentReply()
            reply.collection = r.collection; reply.id = r.id; reply.meta = meta; reply.body = Data(body)
            reply.latestVersion = latest.version
            if r.withHistory {
                reply.versions = versions
                try self.store.scan(prefix: DocumentKeys.auditPrefix(r.collection, r.id)) { _, value in
                    reply.audit.append(try Chorus_V1_AuditEntry(serializedBytes: value))
                    return true
                }
            }
            return reply
        }
    }

    func listDocuments(_ r: Chorus_V1_DocumentListRequest) async throws -> Chorus_V1_DocumentList {
        try await storeQueue.run { () throws -> Chorus_V1_DocumentList in
            var byID: [String: Chorus_V1_DocumentSummary] = [:]
            let prefix = DocumentKeys.collectionPrefix(r.collection)
            try self.store.scan(prefix: prefix) { key, value in
                let rest = String(decoding: key.dropFirst(prefix.count), as: UTF8.self)
                guard let slash = rest.lastIndex(of: "/") else { return true }
                let id = String(rest[..<slash])
                let m = try Chorus_V1_DocumentVersion(serializedBytes: value)
                var s = byID[id] ?? { var s = Chorus_V1_DocumentSummary(); s.id = id; return s }()
                if m.version >= s.latest.version { s.latest = m }
                if !m.approvedBy.isEmpty { s.approvedVersion = max(s.approvedVersion, m.version) }
                byID[id] = s
                return true
            }
            var list = Chorus_V1_DocumentList()
            list.documents = byID.values.sorted { ($0.latest.createdAtMs, $0.id) > ($1.latest.createdAtMs, $1.id) }
            list.documents = Array(list.documents.prefix(Int(r.limit == 0 ? 50 : r.limit)))
            return list
        }
    }

    func approveDocument(_ r: Chorus_V1_DocumentApprove) async throws -> Chorus_V1_DocumentReply {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let blockSelf = options.blockSelfApproval
        let reply = try await storeQueue.run { () throws -> Chorus_V1_DocumentReply in
            let versions = try self.documentVersions(r.collection, r.id)
            guard let latest = versions.last else { throw ChorusError(.notFound, "no document \(r.collection)/\(r.id)") }
            guard r.version == latest.version else {
                throw ChorusError(.conflict, "version \(r.version) of \(r.collection)/\(r.id) is not the latest (\(latest.version)): only the latest version can be approved",
                                  hint: "review version \(latest.version) and approve it")
            }
            var m = latest
            guard m.approvedBy.isEmpty else {
                throw ChorusError(.conflict, "version \(m.version) of \(r.collection)/\(r.id) is already approved by \(m.approvedBy)")
            }
            if blockSelf, m.author == r.by {
                throw ChorusError(.usage, "\(r.by) wrote version \(m.version) and cannot approve it: self-approval is blocked on this cluster",
                                  hint: "ask someone else to approve it (the coordinator runs with --block-self-approval)")
            }
            m.approvedBy = r.by
            m.approvedAtMs = now
            var entry = Chorus_V1_AuditEntry()
            entry.atMs = now; entry.who = r.by; entry.action = "approve"; entry.version = m.version; entry.detail = r.note
            var batch = WriteBatch()
            batch.put(DocumentKeys.meta(r.collection, r.id, m.version), try m.serializedBytes())
            batch.put(DocumentKeys.audit(r.collection, r.id, try self.nextAuditSequence(r.collection, r.id)), try entry.serializedBytes())
            do { try self.store.write(batch, sync: true) } catch { throw ChorusError(.storage, "cannot store the approval: \(error)") }
            var reply = Chorus_V1_DocumentReply()
            reply.collection = r.collection; reply.id = r.id; reply.meta = m; reply.latestVersion = m.version
            return reply
        }
        logger.notice("document approved", metadata: ["document": "\(r.collection)/\(r.id)", "version": "\(r.version)", "by": "\(r.by)"])
        return reply
    }

    func documentEvent(_ r: Chorus_V1_DocumentEvent) async throws -> Chorus_V1_DocumentReply {
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        return try await storeQueue.run { () throws -> Chorus_V1_DocumentReply in
            let versions = try self.documentVersions(r.collection, r.id)
            guard let latest = versions.last else { throw ChorusError(.notFound, "no document \(r.collection)/\(r.id)") }
            let v = r.version == 0 ? latest.version : r.version
            guard let meta = versions.first(where: { $0.version == v }) else {
                throw ChorusError(.notFound, "document \(r.collection)/\(r.id) has no version \(v)")
            }
            var entry = Chorus_V1_AuditEntry()
            entry.atMs = now; entry.who = r.who; entry.action = r.action; entry.version = v; entry.detail = r.detail
            do {
                try self.store.put(DocumentKeys.audit(r.collection, r.id, try self.nextAuditSequence(r.collection, r.id)),
                                   try entry.serializedBytes(), sync: true)
            } catch let e as ChorusError { throw e } catch { throw ChorusError(.storage, "cannot store the audit entry: \(error)") }
            var reply = Chorus_V1_DocumentReply()
            reply.collection = r.collection; reply.id = r.id; reply.meta = meta; reply.latestVersion = latest.version
            return reply
        }
    }

    /// Every version's metadata, oldest first (call on the store queue).
    func documentVersions(_ c: String, _ id: String) throws -> [Chorus_V1_DocumentVersion] {
        var out: [Chorus_V1_DocumentVersion] = []
        try store.scan(prefix: DocumentKeys.metaPrefix(c, id)) { _, value in
            out.append(try Chorus_V1_DocumentVersion(serializedBytes: value))
            return true
        }
        return out
    }

    func nextAuditSequence(_ c: String, _ id: String) throws -> Int {
        var n = 0
        try store.scan(prefix: DocumentKeys.auditPrefix(c, id)) { _, _ in n += 1; return true }
        return n + 1
    }
}
